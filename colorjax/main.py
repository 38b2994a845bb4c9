"""Entry point: ``python -m colorjax.main --config=configs/unet.py --workdir=DIR``.

The config is validated before anything compiles; ``config.mode`` is 'train' (resumes from the
workdir when it holds a run) or 'eval' (evaluates the latest checkpoint).
"""
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from colorjax import console, validation

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Folder for checkpoints, logs and samples.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  console.quiet_library_logs()
  from colorjax import train
  config = _CONFIG.value
  try:
    validation.validate(config)
    if config.mode == 'eval':
      metrics = train.evaluate_checkpoint(config, _WORKDIR.value)
      print(' '.join(f'{k} {v:.4f}' for k, v in sorted(metrics.items())))
    else:
      train.train_and_evaluate(config, _WORKDIR.value)
  except validation.UserError as e:
    logging.error('%s', e)
    print(f'colorjax: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  app.run(main)
