"""``colorjax bench``: training-step throughput of a config on synthetic device batches.

  colorjax bench --config=configs/unet.py --steps=50 --config.batch_size=64

See colorjax/benchmark.py for what is measured. Needs JAX only (no TensorFlow).
"""
from absl import flags
from ml_collections import config_flags

from colorjax import benchmark

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.')
_STEPS = flags.DEFINE_integer('steps', 20, 'Timed steps (after the warm-up).')
_WARMUP = flags.DEFINE_integer('warmup', 3, 'Untimed steps after compilation.')
flags.mark_flags_as_required(['config'])


def main(argv):
  del argv
  benchmark.report(_CONFIG.value, _STEPS.value, _WARMUP.value)
