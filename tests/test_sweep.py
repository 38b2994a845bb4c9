"""The sweep runner: grid expansion, one command per point, real runs tabulated, failures kept."""
import csv
import importlib.util
import math
import shlex

from conftest import ROOT

spec = importlib.util.spec_from_file_location('sweep', ROOT / 'launch' / 'sweep.py')
sweep = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sweep)

TINY = ['num_steps=2', 'image_size=32', 'batch_size=2', 'model.features=(4, 8)',
        'gan.d_features=4', 'log_every=1', 'eval_every=2', 'checkpoint_every=2']


def test_the_grid_of_the_vgg16_gan_study_is_six_commands(capsys, tmp_path):
  code = sweep.main(['--config=configs/vgg_gan.py', f'--workdir={tmp_path}',
                     '--grid=optim.lr=2e-4,2e-3', '--grid=optim.b1=0.05,0.5,0.9',
                     '--set=num_steps=100', '--print_commands'])
  lines = capsys.readouterr().out.splitlines()
  assert code == 0 and len(lines) == 6
  points = [(lr, b1) for lr in ('2e-4', '2e-3') for b1 in ('0.05', '0.5', '0.9')]
  for line, (lr, b1) in zip(lines, points):
    argv = shlex.split(line)
    assert argv[1:4] == ['-m', 'colorjax.main', '--config=configs/vgg_gan.py']
    assert argv[4] == f'--workdir={tmp_path}/lr-{lr}_b1-{b1}'
    assert argv[5:] == ['--config.num_steps=100', f'--config.optim.lr={lr}',
                        f'--config.optim.b1={b1}']
  assert not list(tmp_path.iterdir())     # nothing ran


def test_a_sweep_runs_each_point_tabulates_losses_and_mae_and_keeps_going_after_a_failure(
    tmp_path, capsys):
  code = sweep.main(['--config=configs/cgan.py:demo', f'--workdir={tmp_path}',
                     '--grid=optim.b1=0.5,1.5'] + [f'--set={s}' for s in TINY])
  assert code == 1                          # one point failed
  with open(tmp_path / 'sweep.csv') as f:
    rows = list(csv.DictReader(f))
  assert [row['optim.b1'] for row in rows] == ['0.5', '1.5']
  good, bad = rows
  assert good['status'] == 'ran' and good['steps'] == '2'
  for column in ('d_loss', 'g_loss', 'mae', 'psnr'):
    assert math.isfinite(float(good[column])), column
  assert 0 < float(good['mae']) < 128
  assert bad['status'].startswith('failed (exit 2')
  assert 'config.optim.b1=1.5 is not allowed' in (tmp_path / 'b1-1.5.log').read_text()
  table = (tmp_path / 'sweep.md').read_text()
  assert table.splitlines()[0] == ('| optim.b1 | D loss | G loss | eval MAE (ab) | eval PSNR | '
                                   'steps | status |')
  assert 'sweep: wrote' in capsys.readouterr().out
