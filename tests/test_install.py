"""The install the README and launch scripts use: `make ... ACCELERATOR=cpu|cuda|tpu` installs
the matching JAX build (checked by the pip command make would run, and by the extras the
installed jax declares), and refuses any other value."""
import importlib.metadata
import subprocess
import tomllib

import pytest

from conftest import ROOT


def make_commands(*args):
  """The commands ``make -n -B ARGS`` would run (every target rebuilt), and its exit code."""
  result = subprocess.run(['make', '-n', '-B', '--no-print-directory', *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
  return result.stdout + result.stderr, result.returncode


@pytest.mark.parametrize('accelerator, extras', [
    (None, 'test,onnx,video,serve'), ('cpu', 'test,onnx,video,serve'),
    ('cuda', 'test,onnx,video,serve,cuda'), ('tpu', 'test,onnx,video,serve,tpu')])
@pytest.mark.parametrize('target', ['demo', 'test', 'install'])
def test_make_installs_the_jax_build_for_the_accelerator(target, accelerator, extras):
  args = [target] + ([f'ACCELERATOR={accelerator}'] if accelerator else [])
  out, code = make_commands(*args)
  assert code == 0, out
  assert f"pip install --quiet -c constraints.txt -e '.[{extras}]'" in out
  assert f'.venv/.installed-{accelerator or "cpu"}' in out


def test_an_unknown_accelerator_is_one_sentence():
  out, code = make_commands('demo', 'ACCELERATOR=gpu')
  assert code != 0
  assert 'ACCELERATOR=gpu is not allowed; use cpu, cuda or tpu' in out
  assert 'pip' not in out


def test_the_accelerator_extras_are_jaxs_own():
  """colorjax's cuda and tpu extras name extras that the installed jax declares."""
  extras = tomllib.loads((ROOT / 'pyproject.toml').read_text())['project'][
      'optional-dependencies']
  assert extras['cuda'] == ['jax[cuda12]'] and extras['tpu'] == ['jax[tpu]']
  declared = importlib.metadata.metadata('jax').get_all('Provides-Extra')
  assert {'cuda12', 'tpu'} <= set(declared)


@pytest.mark.parametrize('script, accelerator', [('slurm.sbatch', 'cuda'), ('tpu_pod.sh', 'tpu')])
def test_launch_scripts_install_their_accelerators_build(script, accelerator):
  assert f'make --no-print-directory install ACCELERATOR={accelerator}' in (
      ROOT / 'launch' / script).read_text()
