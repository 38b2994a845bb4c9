"""Every kind of good and bad file in one folder, through training, evaluate and colorize:
good images are used, bad ones are skipped and counted (colorize names them), nothing
crashes."""
import collections
import json

from colorjax.data import pipeline
from colorjax.training import train
from conftest import run_cli, write_image_mix


def test_training_evaluate_and_colorize_skip_and_count_every_bad_file(config, tmp_path):
  mix = tmp_path / 'mix'
  good, bad = write_image_mix(mix)
  config.data.source = f'folder:{mix}'
  config.data.eval_fraction = 0.0
  batches = pipeline.train_batches(config)
  for _ in range(3):
    assert next(batches)['rgb'].shape == (4, 32, 32, 3)
  assert batches.skip_logs[0].counts() == dict(collections.Counter(bad.values()))
  assert f'{len(bad)} of {len(good) + len(bad)} images skipped' in batches.skipped()
  batches.close()

  workdir = tmp_path / 'run'
  config.data.eval_fraction = 0.3
  config.num_steps, config.model.features = 2, (4, 8)
  train.train_and_evaluate(config, str(workdir))

  evaluated = run_cli('evaluate', f'--workdir={workdir}', f'--data=folder:{mix}',
                      f'--output={tmp_path / "eval"}')
  assert evaluated.returncode == 0, evaluated.stderr[-3000:]
  (report,) = (tmp_path / 'eval').glob('*.json')
  report = json.loads(report.read_text())
  assert report['images'] == len(good)
  assert report['skipped'].startswith(f'{len(bad)} of {len(good) + len(bad)} images skipped')

  out = tmp_path / 'colour'
  colorized = run_cli('colorize', f'--workdir={workdir}', f'--output={out}', mix)
  assert colorized.returncode == 1
  assert f'Colorized {len(good)} image(s)' in colorized.stdout
  failed = [line for line in colorized.stderr.splitlines() if line.startswith('  failed: ')]
  assert sorted(line.split(': ')[1].rpartition('/')[2] for line in failed) == sorted(bad)
  # photo.jpg and photo.png keep their extension in the name instead of overwriting each other.
  renamed = {'photo.jpg': 'photo_jpg.png', 'photo.png': 'photo_png.png'}
  assert sorted(p.name for p in out.iterdir()) == sorted(
      renamed.get(name, name.rpartition('.')[0] + '.png') for name in good)
