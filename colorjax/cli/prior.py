"""``colorjax prior``: the empirical distribution of a data source's pixels over the ab bins.

  colorjax prior --config=configs/classify.py --output=runs/classify/prior.npy [--images=10000]
  python -m colorjax.main --config=configs/classify.py --workdir=runs/classify \
      --config.classify.prior=runs/classify/prior.npy

Counts the nearest bin of every pixel of ``--images`` training crops, exactly as training sees
them (config.data, image_size, augmentation), and writes the normalised counts as a float64
.npy of shape [Q] (read back with ``allow_pickle=False``). The classification task derives its
class-rebalancing weights from it.
"""
import os

import numpy as np
from absl import flags
from ml_collections import config_flags

from colorjax.core import validation
from colorjax.tasks.classification import empirical_prior

FLAGS = flags.FlagValues()  # this command's own flags (colorjax SUB --help lists them)

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.',
                                          lock_config=True, flag_values=FLAGS)
_OUTPUT = flags.DEFINE_string('output', None, 'The .npy file to write.', flag_values=FLAGS)
_IMAGES = flags.DEFINE_integer('images', 10000, 'Training crops to count (whole batches).',
                               flag_values=FLAGS)


def main(argv):
  config = _CONFIG.value
  if len(argv) > 1 or config is None or not _OUTPUT.value:
    raise validation.UserError('give --config=FILE and --output=PRIOR.npy (flags only).')
  if _IMAGES.value < 1:
    raise validation.UserError(f'--images={_IMAGES.value} is not allowed; use a positive count.')
  validation.validate_data(config)
  prior, seen = empirical_prior(config, _IMAGES.value)
  os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
  np.save(_OUTPUT.value, prior)
  print(f'Wrote {_OUTPUT.value}: the prior over {len(prior)} ab bins from {seen} training crops '
        f'of {config.data.source} at {config.image_size}² ({np.sum(prior == 0)} bins never '
        'seen).')
