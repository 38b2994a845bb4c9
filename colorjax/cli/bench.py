"""``colorjax bench``: training-step throughput of a config.

  colorjax bench --config=configs/unet.py --steps=50 --config.batch_size=64
  colorjax bench --config=configs/unet.py:demo --input=pipeline   # end to end, with tf.data

See colorjax/training/benchmark.py for what is measured. With the default synthetic input it
needs JAX only (no TensorFlow). Each flag, when given, overrides the config's ``benchmark``
field.
"""
from absl import flags
from ml_collections import config_flags

from colorjax.cli import host_memory
from colorjax.training import benchmark

FLAGS = flags.FlagValues()  # this command's own flags (colorjax SUB --help lists them)

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.',
                                          flag_values=FLAGS)
_STEPS = flags.DEFINE_integer('steps', None, 'Timed steps (default: config.benchmark.steps).',
                              flag_values=FLAGS)
_WARMUP = flags.DEFINE_integer('warmup', None, 'Untimed steps after compilation (default: '
                               'config.benchmark.warmup).', flag_values=FLAGS)
_INPUT = flags.DEFINE_enum('input', None, benchmark.INPUTS,
                           "Batches: 'synthetic' on the devices or the real input 'pipeline' "
                           '(default: config.benchmark.input).', flag_values=FLAGS)
flags.mark_flags_as_required(['config'], flag_values=FLAGS)


def main(argv):
  del argv
  print(host_memory.keep_freed_memory().line)
  config = _CONFIG.value
  for flag, field in ((_STEPS, 'steps'), (_WARMUP, 'warmup'), (_INPUT, 'input')):
    if flag.value is not None:
      config.benchmark[field] = flag.value
  benchmark.report(config)
