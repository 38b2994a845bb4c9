"""host_memory.keep_freed_memory: XLA:CPU's large buffers keep their pages from run to run."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

BUFFER_MB = 64
# A fresh process: the setting must come before JAX starts its runtime. Each run writes a new
# 64 MB output (above glibc's largest mmap threshold) and frees the one before; the script
# prints whether the setting took and the median minor page faults of 20 runs after 12 warm-up
# runs (the kept heap grows by a buffer now and then, mostly over the first ten and more often on
# a busy machine, until the frees, which JAX makes on its own threads, always find a block to
# reuse; the median is the run that found one).
SCRIPT = f"""
import json, resource, statistics, sys
import jax, jax.numpy as jnp
from colorjax.cli import host_memory
kept = host_memory.keep_freed_memory().kept
double = jax.jit(lambda x: x * 2)
x = jnp.ones(({BUFFER_MB} << 18,), jnp.float32)
RUNS = 20
for _ in range(12):
  double(x).block_until_ready()
faults = []
for _ in range(RUNS):
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  double(x).block_until_ready()
  faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
faults = statistics.median(faults)
print(json.dumps({{'kept': kept, 'faults_per_run': faults}}))
"""
PAGES = BUFFER_MB << 8   # 4 KiB pages in the buffer


def _run(malloc):
  env = {**os.environ, 'COLORJAX_MALLOC': malloc, 'JAX_PLATFORMS': 'cpu'}
  env.pop('XLA_FLAGS', None)
  result = subprocess.run([sys.executable, '-c', SCRIPT], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True, timeout=300)
  return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc malloc only')
def test_freed_buffers_keep_their_pages():
  system, kept = _run('system'), _run('kept')
  assert not system['kept'] and kept['kept']
  # glibc's defaults: each run faults in its whole new buffer again.
  assert system['faults_per_run'] > PAGES / 2, system
  assert kept['faults_per_run'] < PAGES / 4, kept


PLUGIN_CHECK = """
import sys
from colorjax.cli import host_memory
setting = host_memory.keep_freed_memory()
print(host_memory.accelerator(), setting.kept, setting.line)
"""


def _decision(tmp_path, plugin=None, **env):
  """What a fresh process decides: ``plugin`` installs a distribution that declares a JAX
  plugin of that name (as jax-cuda12-plugin does), found on PYTHONPATH."""
  env = {**os.environ, **env}
  env.pop('COLORJAX_MALLOC', None)
  if plugin:
    info = tmp_path / f'jax_{plugin}_plugin-1.0.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text(f'Metadata-Version: 2.1\nName: jax-{plugin}-plugin\n'
                                   'Version: 1.0\n')
    (info / 'entry_points.txt').write_text(f'[jax_plugins]\n{plugin} = jax_{plugin}_plugin\n')
    env['PYTHONPATH'] = f"{tmp_path}{os.pathsep}{env.get('PYTHONPATH', '')}"
  result = subprocess.run([sys.executable, '-c', PLUGIN_CHECK], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True, timeout=120)
  return result.stdout.strip().splitlines()[-1]


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc malloc only')
def test_malloc_is_left_alone_where_xla_runs_on_an_accelerator(tmp_path):
  for platforms in ('cpu', ''):   # named, or no accelerator plugin installed
    assert _decision(tmp_path, JAX_PLATFORMS=platforms).startswith(
        'None True malloc: freed memory kept')
  assert _decision(tmp_path, JAX_PLATFORMS='tpu,cpu') == (
      'tpu False malloc: glibc defaults (XLA runs on the accelerator (tpu)).')
  assert _decision(tmp_path, plugin='cuda', JAX_PLATFORMS='') == (
      'cuda False malloc: glibc defaults (XLA runs on the accelerator (cuda)).')
