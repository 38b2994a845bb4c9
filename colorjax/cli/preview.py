"""``colorjax preview``: a contact sheet of decoded training crops with their L and ab channels.

  colorjax preview --config=configs/default.py --output=runs/demo/contact_sheet.png

Columns: the crop, its L channel, its a channel alone and its b channel alone; one row per image
of the first training batch. A quick look at what the pipeline feeds the networks.
"""
import numpy as np
from absl import flags, logging
from ml_collections import config_flags

from colorjax.core import color, validation, visualize
from configs import default

FLAGS = flags.FlagValues()  # this command's own flags (colorjax SUB --help lists them)

_CONFIG = config_flags.DEFINE_config_file('config', default.__file__, 'Experiment config file.',
                                          lock_config=True, flag_values=FLAGS)
_OUTPUT = flags.DEFINE_string('output', 'runs/contact_sheet.png', 'PNG file to write.',
                              flag_values=FLAGS)
_ROWS = flags.DEFINE_integer('rows', 8, 'Images shown (at most one batch).', flag_values=FLAGS)


def contact_sheet(config, rows):
  """uint8 contact sheet of the first ``rows`` images of the first training batch."""
  from colorjax.data import pipeline  # imports TensorFlow
  batches = pipeline.train_batches(config)
  batch = next(batches)
  batches.close()
  logging.info('%s.', batches.skipped())
  pixels = batch.get('b', batch.get('rgb', batch.get('lab')))[:rows]
  lab = pixels if pixels.dtype == np.float32 else color.rgb_to_lab(
      color.uint8_to_unit(pixels, dtype=np.float32, xp=np), xp=np)
  return visualize.grid([visualize.lab_channels(image) for image in lab],
                        labels=visualize.LAB_CHANNELS)


def main(argv):
  del argv
  config = _CONFIG.value
  validation.validate_data(config)
  visualize.save_png(_OUTPUT.value, contact_sheet(config, _ROWS.value))
  print(f'Wrote {_OUTPUT.value}')
