"""``colorjax bench``: training-step throughput of a config.

  colorjax bench --config=configs/unet.py --steps=50 --config.batch_size=64
  colorjax bench --config=configs/unet.py:demo --input=pipeline   # end to end, with tf.data

See colorjax/benchmark.py for what is measured. With the default synthetic input it needs JAX
only (no TensorFlow). Each flag, when given, overrides the config's ``benchmark`` field.
"""
from absl import flags
from ml_collections import config_flags

from colorjax import benchmark, host_memory

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.')
_STEPS = flags.DEFINE_integer('steps', None, 'Timed steps (default: config.benchmark.steps).')
_WARMUP = flags.DEFINE_integer('warmup', None, 'Untimed steps after compilation (default: '
                               'config.benchmark.warmup).')
_INPUT = flags.DEFINE_enum('input', None, benchmark.INPUTS,
                           "Batches: 'synthetic' on the devices or the real input 'pipeline' "
                           '(default: config.benchmark.input).')
flags.mark_flags_as_required(['config'])


def main(argv):
  del argv
  print(host_memory.keep_freed_memory().line)
  config = _CONFIG.value
  for flag, field in ((_STEPS, 'steps'), (_WARMUP, 'warmup'), (_INPUT, 'input')):
    if flag.value is not None:
      config.benchmark[field] = flag.value
  benchmark.report(config)
