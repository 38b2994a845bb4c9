"""Start-up without recompiling: ``colorjax train`` with JAX's persistent compilation cache (a
second process loads the training step; a read-only folder serves what it holds; a corrupt entry
is compiled and said in one line), and the start-up line per phase."""
import contextlib
import os
import re
import subprocess

import pytest

from conftest import ROOT
from colorjax.core import compilation_cache
from test_train import ENV, train_command

START_UP = re.compile(r'Start-up: [\d.]+ s to the first step: imports [\d.]+ s, data source '
                      r'[\d.]+ s, .*input pipeline [\d.]+ s, trace [\d.]+ s, compile [\d.]+ s '
                      r'\((\d+) programs? from the compilation cache\), first step [\d.]+ s\.')


def train(workdir, cache):
  result = subprocess.run(train_command(workdir, '--config.num_steps=1'), cwd=ROOT,
                          capture_output=True, text=True, timeout=600,
                          env={**ENV, compilation_cache.ENV: str(cache)})
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stderr


def served(log):
  """How many programs of the compile phase the cache served, from the start-up line."""
  found = START_UP.search(log)
  assert found, log[-3000:]
  return int(found.group(1))


@contextlib.contextmanager
def read_only(folder):
  """``folder`` made unwritable, even for root (the immutable attribute)."""
  if os.geteuid():
    os.chmod(folder, 0o555)
  elif subprocess.run(['chattr', '+i', str(folder)], capture_output=True).returncode:
    pytest.skip('running as root without chattr +i: a read-only folder cannot be made here')
  try:
    yield
  finally:
    if os.geteuid():
      os.chmod(folder, 0o755)
    else:
      subprocess.run(['chattr', '-i', str(folder)], check=True)


def test_a_second_process_loads_the_training_step_and_a_bad_cache_never_fails_a_run(tmp_path):
  cache = tmp_path / 'xla'
  cold = train(tmp_path / 'cold', cache)
  assert 'Compiled the training step' in cold and served(cold) == 0
  assert any(cache.glob('jit_step-*-cache'))

  warm = train(tmp_path / 'warm', cache)
  assert 'Loaded the training step' in warm and served(warm) == 1

  with read_only(cache):   # a team's shared cache this user cannot write
    shared = train(tmp_path / 'read_only', cache)
  assert f'Compilation cache: {cache} is read-only here' in shared
  assert 'Loaded the training step' in shared

  for entry in cache.glob('*-cache'):
    entry.write_bytes(b'not a compiled program')
  corrupt = train(tmp_path / 'corrupt', cache)
  assert 'Compiled the training step' in corrupt and served(corrupt) == 0
  assert re.search(r'Compilation cache: an entry could not be read \(.+\); the program was '
                   'compiled instead', corrupt)


@pytest.fixture
def jax_cache_settings():
  """Puts back this process's compilation-cache settings after a test changes them."""
  import jax
  names = ('jax_enable_compilation_cache', 'jax_compilation_cache_dir',
           'jax_persistent_cache_min_compile_time_secs', 'jax_compilation_cache_max_size')
  saved = {name: getattr(jax.config, name) for name in names}
  yield
  for name, value in saved.items():
    jax.config.update(name, value)


def test_an_empty_cache_folder_turns_it_off_and_an_unusable_one_is_said(
    tmp_path, caplog, jax_cache_settings):
  assert compilation_cache.enable('') == '' and not compilation_cache.enabled()
  blocked = tmp_path / 'file'
  blocked.write_text('a file where the folder should be')
  assert compilation_cache.enable(str(blocked / 'xla')) == ''
  assert not compilation_cache.enabled()
  assert f'Compilation cache: {blocked / "xla"} cannot be created (Not a directory); compiling ' \
         'without it.' in caplog.text
  assert compilation_cache.enable(str(tmp_path / 'xla')) == str(tmp_path / 'xla')
  assert compilation_cache.enabled()


def test_the_cache_folder_comes_from_the_config_then_the_environment_then_xdg(monkeypatch):
  for variable in (compilation_cache.ENV, 'JAX_COMPILATION_CACHE_DIR'):
    monkeypatch.delenv(variable, raising=False)
  monkeypatch.setenv('XDG_CACHE_HOME', '/x/cache')
  assert compilation_cache.directory() == '/x/cache/colorjax/xla'
  monkeypatch.setenv('JAX_COMPILATION_CACHE_DIR', '/jax')
  assert compilation_cache.directory() == '/jax'
  monkeypatch.setenv(compilation_cache.ENV, '/shared/xla')
  assert compilation_cache.directory() == '/shared/xla'
  assert compilation_cache.directory('/from/config') == '/from/config'
  assert compilation_cache.directory('') == ''
