"""Real multi-process JAX on 127.0.0.1: 2 processes × 2 CPU devices, started by
launch/local.py, against 1 process with 4 devices fed the same global batches."""
import os
import re
import signal
import subprocess
import sys

import numpy as np

from conftest import ROOT
from test_train import HERE, run_training, wait_for_logged_steps

SAVE_OFTEN = ('checkpoint_every=2',)


def launch(workdir, steps, *overrides, env=None):
  return subprocess.Popen(
      [sys.executable, os.path.join(ROOT, 'launch', 'local.py'), '--processes=2',
       '--devices_per_process=2', '--', sys.executable, os.path.join(HERE, 'run_training.py'),
       str(workdir), str(steps), *overrides], cwd=ROOT, stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, text=True,
      env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2', **(env or {})})


def children_of(pid):
  """Process ids whose parent is ``pid`` (Linux /proc), in start order."""
  found = []
  for entry in os.listdir('/proc'):
    try:
      with open(f'/proc/{entry}/stat') as f:
        fields = f.read().rpartition(')')[2].split()
    except (OSError, ValueError):
      continue
    if entry.isdigit() and int(fields[1]) == pid:
      found.append((int(fields[19]), int(entry)))  # (start time, pid)
  return [child for _, child in sorted(found)]


def train_two_processes(workdir, steps, *overrides, env=None):
  """(the final params, the processes' output)."""
  process = launch(workdir, steps, *overrides, env=env)
  output, _ = process.communicate(timeout=600)
  assert process.returncode == 0, output[-3000:]
  return dict(np.load(os.path.join(workdir, 'params.npz'))), output


def assert_same_params(a, b):
  # Same data, other summation order: far below one Adam step (lr 2e-4).
  assert a.keys() == b.keys()
  for name in a:
    np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=2e-5, err_msg=name)


def test_preempted_processes_stop_together_and_resume_like_one_process_with_four_devices(
    tmp_path):
  """A preemption notice to one process stops both after the same step with one checkpoint;
  restarted, they resume together, process 0 loading its training step from the compilation
  cache folder both share, and end where 1 process × 4 devices does. (JAX writes entries from
  process 0 only and keys CPU programs per process, so process 1 compiles again on the CPU.)"""
  workdir = tmp_path / 'preempted'
  cache = {'COLORJAX_COMPILATION_CACHE': str(tmp_path / 'xla')}
  process = launch(workdir, 100000, 'checkpoint_every=1000', env=cache)
  try:
    wait_for_logged_steps(process, workdir, 3)
    children = children_of(process.pid)
    assert len(children) == 2
    os.kill(children[1], signal.SIGTERM)  # the scheduler tells one host only
    output, _ = process.communicate(timeout=300)
  finally:
    process.kill()
  assert process.returncode == 0, output[-3000:]
  stopped = [int(s) for s in os.listdir(workdir / 'checkpoints')]
  assert len(stopped) == 1 and 3 <= stopped[0] < 1000
  for index in (0, 1):
    assert f'[{index}] WARNING:absl:Stopped by SIGTERM (preemption notice) at step ' \
           f'{stopped[0]};' in output
  end = stopped[0] + 2
  resumed, output = train_two_processes(workdir, end, *SAVE_OFTEN, env=cache)
  hits = re.search(r'\[0\] compilation cache hits: (\d+)', output)
  assert hits and int(hits.group(1)) >= 1, output[-3000:]
  assert '[1] compilation cache hits: ' in output   # it ran with the cache, unharmed
  assert_same_params(resumed, run_training(tmp_path / 'straight', end, *SAVE_OFTEN, devices=4))
  assert (workdir / 'samples' / f'step_{end:06d}.png').exists()  # written once, by process 0
