"""Runs colorjax training in a fresh process (for the multi-device and resume tests).

  python tests/run_training.py WORKDIR NUM_STEPS [field=value ...]

Uses configs/default.py at test size, then writes the final params to WORKDIR/params.npz.
Several processes when started by launch/local.py (JAX_COORDINATOR_ADDRESS etc. set). The
compilation cache is set up as ``colorjax train`` sets it; each process prints how many programs
it served.
"""
import ast
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from conftest import load_config  # noqa: E402
from colorjax.core import compilation_cache, parallel  # noqa: E402
from colorjax.training import train  # noqa: E402

TEST_SIZE = dict(image_size=32, batch_size=8, log_every=1, eval_every=1000,
                 checkpoint_every=1000, keep_best=0)


def main(workdir, num_steps, *overrides):
  parallel.initialize()  # several processes when JAX_COORDINATOR_ADDRESS etc. say so
  compilation_cache.enable()
  config = load_config()
  for field, value in TEST_SIZE.items():
    config[field] = value
  config.model.features = (4, 8)
  config.num_steps = int(num_steps)
  for override in overrides:
    field, _, value = override.partition('=')
    *parents, name = field.split('.')
    node = config
    for parent in parents:
      node = node[parent]
    node[name] = ast.literal_eval(value)
  state = train.train_and_evaluate(config, workdir)
  print(f'compilation cache hits: {compilation_cache.counts()[1]}', flush=True)
  if jax.process_index():
    return
  flat = {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in
          jax.tree_util.tree_leaves_with_path(jax.device_get(state.params))}
  np.savez(os.path.join(workdir, 'params.npz'), **flat)


if __name__ == '__main__':
  main(*sys.argv[1:])
