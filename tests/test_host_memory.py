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
from colorjax import host_memory
kept = host_memory.keep_freed_memory()
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
