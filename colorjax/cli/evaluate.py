"""``colorjax evaluate``: how good a trained colorizer is, on held-out images.

  colorjax evaluate --workdir=runs/demo
  colorjax evaluate --workdir=runs/places --data=folder:~/test_photos --inception_weights=FILE

Reports PSNR, SSIM, mean absolute ab error, mean CIEDE2000 and colourfulness of the predictions
against the originals, next to the no-colour baseline (L only) and the originals' own
colourfulness, and FID when InceptionV3 weights are at hand. Writes RUN/eval/step_N-DATA.json
and .md and prints the table. ``--data`` evaluates another source: every file of a folder, or
``--split`` of a TFDS data set (e.g. 'test[:2000]').
"""
import dataclasses
import sys

from absl import flags

from colorjax import evaluation
from colorjax.core import validation
from colorjax.models import inception, keras_weights
from colorjax.training import experiment, runs

FLAGS = flags.FlagValues()  # this command's own flags (colorjax SUB --help lists them)

_WORKDIR = flags.DEFINE_string('workdir', None, 'Training run to evaluate (latest checkpoint).',
                               flag_values=FLAGS)
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'One checkpoint folder, RUN/checkpoints/N.',
                                  flag_values=FLAGS)
_DATA = flags.DEFINE_string('data', None, "Images to evaluate on (default: the run's held-out "
                            "images): 'samples', 'folder:PATH' or 'tfds:NAME'.", flag_values=FLAGS)
_SPLIT = flags.DEFINE_string('split', None, 'TFDS split for --data=tfds:NAME.', flag_values=FLAGS)
_INCEPTION = flags.DEFINE_string(
    'inception_weights', None, f'Keras InceptionV3 weights ({keras_weights.INCEPTION_V3_NOTOP}) '
    'for FID; default: the Keras cache when it holds them, else no FID.', flag_values=FLAGS)
_OUTPUT = flags.DEFINE_string('output', None, 'Folder for the report (default: RUN/eval).',
                              flag_values=FLAGS)


def with_data(run, source, split):
  """``run`` evaluated on another data source (all of a folder; ``split`` of TFDS)."""
  config = run.config.as_configdict()
  config.data.source = source
  if source.startswith('folder:'):
    config.data.eval_fraction = 1.0
  if split:
    config.data.eval_split = split
  validation.check_source(config, 'data.source')
  return dataclasses.replace(run, config=experiment.frozen(config))


def load_inception(path):
  """InceptionV3 variables for FID, or None (with a note on stderr) when no weights are at hand."""
  try:
    path = keras_weights.find_weights(keras_weights.INCEPTION_V3_NOTOP, path,
                                      setting='--inception_weights')
  except validation.UserError as e:
    if path:
      raise
    print(f'FID skipped: {e}', file=sys.stderr)
    return None
  return inception.load_params(path)


def main(argv):
  if len(argv) > 1 or not (_WORKDIR.value or _CHECKPOINT.value):
    raise validation.UserError('give --workdir=RUN (or --checkpoint=PATH) and flags only.')
  run = runs.load(_WORKDIR.value, _CHECKPOINT.value)
  if _DATA.value:
    run = with_data(run, _DATA.value, _SPLIT.value)
  report = evaluation.measure(run, load_inception(_INCEPTION.value))
  path = evaluation.write(report, _OUTPUT.value or f'{run.workdir}/eval')
  print(evaluation.markdown(report))
  print(f'Wrote {path} and the .md next to it.')
