"""configs/ as a package: every config and variant loads by path and by import, validates and
holds only the groups its task and network read; runs written before still load."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from absl import flags
from ml_collections import config_flags

from colorjax import evaluation
from colorjax.core import validation
from colorjax.training import experiment, runs
from conftest import ROOT, load_config

VARIANTS = {'default': ('',), 'unet': ('', 'demo'), 'fusion': ('', 'global_local', 'demo'),
            'classify': ('', 'demo', 'fusion'), 'cgan': ('', 'demo'), 'vgg_gan': ('', 'demo'),
            'cyclegan': ('', 'demo')}
CONFIGS = [f'{name}:{variant}' if variant else name
           for name, variants in VARIANTS.items() for variant in variants]
TASK_GROUPS = {'regression': 'loss', 'classification': 'classify', 'paired_gan': 'gan',
               'cyclegan': 'gan'}
# The model fields only some networks read (the others every network reads or checks).
NETWORK_FIELDS = {'unet': {'features', 'convs_per_level', 'dropout'},
                  'fusion': {'fusion_features', 'vgg_features', 'vgg_trainable', 'vgg_weights'},
                  'vgg': {'features', 'convs_per_block', 'vgg_weights'}, 'resnet': set()}
# What every config.json held before each family's fields moved to its own configs.
OLD_MODEL = {'convs_per_block': None, 'fusion_features': None, 'vgg_features': 'pool',
             'vgg_trainable': False, 'vgg_weights': ''}
OLD_GROUPS = {
    'mode': 'train',
    'classify': {'prior': '', 'neighbours': 5, 'sigma': 5.0, 'prior_sigma': 5.0,
                 'uniform_mix': 0.5, 'decode': 'annealed_mean', 'temperature': 0.38},
    'gan': {'objective': 'vanilla', 'epsilon': 0.0, 'l1_weight': 100.0,
            'discriminator': 'patchgan', 'd_features': 64, 'd_layers': 3, 'd_norm': 'batch',
            'd_head': [1024, 512], 'd_dropout': 0.5, 'cycle_weight': 10.0,
            'identity_weight': 0.5, 'pool_size': 50}}


def test_every_config_file_is_covered():
  assert sorted(p.stem for p in (ROOT / 'configs').glob('*.py')) == sorted(
      ['__init__', *VARIANTS])


def test_configs_import_their_base_as_a_package():
  for path in (ROOT / 'configs').glob('*.py'):
    text = path.read_text()
    assert 'sys.path' not in text and 'colorjax.main' not in text, path.name


def from_flag(spec):
  """The config ``--config=SPEC`` gives, parsed as the commands parse it."""
  values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', flag_values=values)
  values(['colorjax', f'--config={spec}'])
  return values.config


@pytest.mark.parametrize('spec', CONFIGS)
def test_config_loads_validates_and_holds_only_what_its_run_reads(spec, monkeypatch, tmp_path):
  name, _, variant = spec.partition(':')
  monkeypatch.chdir(ROOT)
  config = from_flag(f'configs/{name}.py' + (f':{variant}' if variant else ''))
  assert config.to_json() == load_config(name, variant).to_json()
  experiment.validate(config)
  for group in set(TASK_GROUPS.values()):
    assert (group in config) == (group == TASK_GROUPS[config.task]), group
  network_only = set().union(*NETWORK_FIELDS.values())
  assert set(config.model) & network_only == NETWORK_FIELDS[config.model.name]
  runs.write_config(config, tmp_path)  # read back as written: nothing added
  assert runs.read_config(tmp_path).to_json() == config.to_json()


def test_configs_import_from_any_folder(tmp_path):
  result = subprocess.run([sys.executable, '-c', 'import configs.cyclegan as c; '
                           'print(c.get_config("demo").task)'], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
  assert result.stdout.strip() == 'cyclegan', result.stderr[-2000:]


def run_from(folder, *args):
  """``colorjax ARGS...`` started in ``folder``, outside the repository."""
  return subprocess.run([sys.executable, '-m', 'colorjax.cli', *map(str, args)], cwd=folder,
                        capture_output=True, text=True, timeout=300,
                        env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})


def test_preview_and_bench_data_default_to_the_base_config_from_any_folder(tmp_path):
  out = tmp_path / 'sheet.png'
  result = run_from(tmp_path, 'preview', '--config.image_size=32', '--config.batch_size=4',
                    '--rows=1', f'--output={out}')
  assert result.returncode == 0 and out.is_file(), result.stderr[-2000:]
  result = run_from(tmp_path, 'bench-data', '--sizes=32', '--threads=1', '--num_files=8',
                    '--batch_size=4', '--images=8', '--repeats=1', '--config.data.flip=False')
  assert result.returncode == 0, result.stderr[-2000:]
  assert json.loads(result.stdout.splitlines()[-1])['batch_size'] == 4


def test_a_missing_family_field_names_the_config_that_has_it():
  config = load_config('unet')
  config.task = 'classification'
  with pytest.raises(validation.ConfigError, match=re.escape(
      'is missing; use configs/classify.py, whose fields include it.')):
    experiment.validate(config)


def assert_kept(stored, loaded):
  for key, value in stored.items():
    if isinstance(value, dict):
      assert_kept(value, loaded[key])
    else:
      assert loaded[key] == value, key


def test_a_run_from_before_configs_were_split_still_loads(trained_run, tmp_path):
  """Its config.json holds every family's groups and ``mode``, and lacks data.threads."""
  workdir = tmp_path / 'old'
  shutil.copytree(trained_run, workdir)
  path = workdir / runs.CONFIG_FILE
  stored = json.loads(path.read_text())
  del stored['data']['threads']
  stored['model'].update(OLD_MODEL)
  stored.update(OLD_GROUPS)
  path.write_text(json.dumps(stored, indent=2))

  run = runs.load(str(workdir))
  assert 'mode' not in run.config and run.config.data.threads == 0
  del stored['mode']
  assert_kept(stored, json.loads(run.config.to_json()))
  report = evaluation.measure(run)
  assert report['step'] == 2 and report['images'] > 0
  # Resumed with today's config: the groups only the old file has are logged as gone.
  config = load_config()
  config.image_size, config.batch_size, config.num_steps = 32, 4, 2
  config.model.features = (4, 8)
  changed = runs.describe(runs.check_resume(run.config, config, str(workdir)))
  assert "classify.decode 'annealed_mean' -> (none)" in changed and ' at 0x' not in changed
