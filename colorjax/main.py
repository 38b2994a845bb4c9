"""Entry point: ``python -m colorjax.main --config=configs/unet.py --workdir=DIR``.

The config is validated before anything compiles; ``config.mode`` is 'train' (resumes from the
workdir when it holds a run) or 'eval' (evaluates the latest checkpoint on the held-out images,
as ``colorjax evaluate`` does, without FID).
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
  from colorjax import evaluation, runs, train
  config = _CONFIG.value
  try:
    validation.validate(config)
    if config.mode == 'eval':
      report = evaluation.measure(runs.load(_WORKDIR.value, config=config))
      evaluation.write(report, f'{_WORKDIR.value}/eval')
      print(evaluation.markdown(report))
    else:
      train.train_and_evaluate(config, _WORKDIR.value)
  except validation.UserError as e:
    logging.error('%s', e)
    print(f'colorjax: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  app.run(main)
