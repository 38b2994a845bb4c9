"""A run folder no second trainer, changed config or killed run can break."""
import errno
import json
import logging
import os
import signal
import subprocess
import sys

import pytest

from colorjax import evaluation
from colorjax.core import validation
from colorjax.training import runs, train
from conftest import ROOT, load_config
from test_train import read_jsonl, tiny


def tiny_run(steps, **fields):
  config = tiny(load_config(), steps=steps)
  config.update_from_flattened_dict(fields)
  return config


def test_a_second_trainer_is_refused_naming_the_holder_and_a_killed_one_leaves_no_lock(tmp_path):
  workdir = str(tmp_path / 'run')
  os.makedirs(workdir)
  with runs.WorkdirLock(workdir):
    with pytest.raises(validation.UserError, match=rf'{workdir} is being trained by process '
                       rf'{os.getpid()} on .*; stop that run first, or use another workdir\.'):
      train.train_and_evaluate(tiny_run(1), workdir)
  assert not os.path.exists(os.path.join(workdir, 'config.json'))   # nothing written
  holder = subprocess.Popen(
      [sys.executable, '-c', 'import sys, time\nfrom colorjax.training import runs\n'
       f'with runs.WorkdirLock({workdir!r}):\n  print("held", flush=True)\n  time.sleep(600)'],
      cwd=ROOT, stdout=subprocess.PIPE, text=True)
  assert holder.stdout.readline().strip() == 'held'
  with pytest.raises(validation.UserError, match=f'process {holder.pid} on'):
    train.train_and_evaluate(tiny_run(1), workdir)
  holder.send_signal(signal.SIGKILL)
  holder.wait()
  train.train_and_evaluate(tiny_run(1), workdir)   # the kernel dropped the lock with it
  assert json.load(open(os.path.join(workdir, 'config.json')))['num_steps'] == 1


def test_a_resume_that_changes_the_model_is_refused_and_the_run_still_loads(tmp_path):
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(tiny_run(2), workdir)
  with open(os.path.join(workdir, 'config.json'), 'rb') as f:
    before = f.read()
  with pytest.raises(validation.ConfigError, match=(
      r"config\.model\.features=\[4, 16\] does not fit the run in .* trained with \[4, 8\]: "
      r"its checkpoints hold another state")):
    train.train_and_evaluate(tiny_run(3, **{'model.features': (4, 16), 'optim.lr': 1e-3}),
                             workdir)
  with open(os.path.join(workdir, 'config.json'), 'rb') as f:
    assert f.read() == before
  assert runs.load(workdir).step == 2
  # Fields that leave the state's shapes alone are taken, and recorded in config.json.
  state = train.train_and_evaluate(tiny_run(3, **{'optim.lr': 1e-3, 'data.flip': False}), workdir)
  assert int(state.step) == 3
  stored = json.load(open(os.path.join(workdir, 'config.json')))
  assert stored['num_steps'] == 3 and stored['optim']['lr'] == 1e-3
  with pytest.raises(validation.ConfigError, match=r"config\.task='classification' does not fit"):
    classify = load_config('classify')
    tiny(classify, steps=4)
    train.train_and_evaluate(classify, workdir)


def test_a_resume_drops_the_log_rows_past_its_checkpoint(tmp_path):
  """A killed run may have logged steps it never saved: the resumed log matches the state."""
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(tiny_run(2), workdir)
  with open(os.path.join(workdir, 'metrics.jsonl'), 'a') as f:
    f.write(json.dumps({'step': 3, 'train/loss': 99.0}) + '\n{"step": 4, "train/lo')
  train.train_and_evaluate(tiny_run(4), workdir)
  rows = read_jsonl(workdir)
  assert 99.0 not in [row.get('train/loss') for row in rows]
  keys = [(row['step'], key) for row in rows for key in row if key != 'step']
  assert len(keys) == len(set(keys)) and max(step for step, _ in keys) == 4


def test_config_json_and_eval_reports_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
  workdir = str(tmp_path)
  config = tiny_run(1)
  runs.write_config(config, workdir)
  report = {'run': workdir, 'step': 1, 'data': 'samples', 'image_size': 32, 'images': 2,
            'skipped': '', 'rows': {'prediction': {'psnr': 20.0}, 'gray': {'psnr': 10.0},
                                    'original': {}}}
  evaluation.write(report, str(tmp_path / 'eval'))
  before = {path: path.read_bytes() for path in tmp_path.rglob('*.*')}
  assert len(before) == 3

  def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, 'No space left on device')
  monkeypatch.setattr(os, 'fsync', full_disk)
  config.num_steps = 5
  with pytest.raises(OSError):
    runs.write_config(config, workdir)
  report['rows']['prediction']['psnr'] = 30.0
  with pytest.raises(OSError):
    evaluation.write(report, str(tmp_path / 'eval'))
  assert {path: path.read_bytes() for path in tmp_path.rglob('*.*')} == before


def test_a_tampered_config_json_is_one_sentence(tmp_path):
  """An edited or damaged config.json: evaluate, colorize and export refuse the run in one
  sentence (through runs.load), before allocating anything its sizes ask for."""
  workdir = tmp_path / 'run'
  train.train_and_evaluate(tiny_run(1), str(workdir))
  path = workdir / 'config.json'
  good = json.loads(path.read_text())

  def edited(change):
    config = json.loads(json.dumps(good))
    change(config)
    return json.dumps(config)

  tampered = {
      'truncated': path.read_text()[:100],
      'not JSON': 'hello',
      'a list': '[1, 2, 3]',
      'unknown task': edited(lambda c: c.update(task='gan')),
      'huge image_size': edited(lambda c: c.update(image_size=10 ** 6)),
      'image_size a string': edited(lambda c: c.update(image_size='32')),
      'negative batch_size': edited(lambda c: c.update(batch_size=-4)),
      'unknown network': edited(lambda c: c['model'].update(name='transformer')),
      'features a string': edited(lambda c: c['model'].update(features='wide')),
      'no model': edited(lambda c: c.pop('model')),
      'unknown dtype': edited(lambda c: c.update(compute_dtype='float8')),
      'another width': edited(lambda c: c['model'].update(features=[4, 16])),
  }
  for case, text in tampered.items():
    path.write_text(text)
    with pytest.raises(validation.UserError, match=rf'{path}|{workdir}'):
      runs.load(str(workdir))
  result = subprocess.run([sys.executable, '-m', 'colorjax.cli', 'export', f'--workdir={workdir}',
                           f'--output={tmp_path / "m.cjx"}'], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 2 and 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1].endswith(
      'it does not hold the state config.json describes (was the file edited?).')


def test_a_resume_removes_the_unfinished_checkpoint_folders_a_killed_run_left(tmp_path, caplog):
  """Orbax's temporary folder of a save that `kill -9` cut short: removed by the next trainer
  that holds the workdir's lock, and named in one line; a refused trainer leaves it."""
  workdir = tmp_path / 'run'
  train.train_and_evaluate(tiny_run(2), str(workdir))
  left = workdir / 'checkpoints' / '4.orbax-checkpoint-tmp'
  (left / 'state.orbax-checkpoint-tmp').mkdir(parents=True)
  (left / 'state.orbax-checkpoint-tmp' / 'manifest.ocdbt').write_bytes(b'torn')
  with runs.WorkdirLock(str(workdir)):
    with pytest.raises(validation.UserError, match='is being trained by'):
      train.train_and_evaluate(tiny_run(3), str(workdir))
  assert left.is_dir()
  with caplog.at_level(logging.INFO, logger='absl'):
    train.train_and_evaluate(tiny_run(3), str(workdir))
  assert sorted(os.listdir(workdir / 'checkpoints')) == ['1', '2', '3']
  assert [r.getMessage() for r in caplog.records if 'unfinished' in r.getMessage()] == [
      f'Removed from {workdir}/checkpoints the unfinished checkpoint folders a stopped run '
      'left: 4.orbax-checkpoint-tmp.']
