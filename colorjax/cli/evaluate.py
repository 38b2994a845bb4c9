"""``colorjax evaluate``: how good a trained colorizer is, on held-out images.

  colorjax evaluate --workdir=runs/demo
  colorjax evaluate --workdir=runs/places --data=folder:~/test_photos --fid_weights=FILE
  colorjax evaluate --workdir=runs/imagenet --protocol=val5k --data=tfds:imagenet2012
  colorjax evaluate --workdir=runs/demo --video=films/ --video=newsreel.mp4

Reports PSNR, SSIM, mean absolute ab error, mean CIEDE2000, colourfulness and ΔCF of the
predictions against the originals, next to the no-colour baseline (L only) and the originals'
own colourfulness, and FID when the weights of the ``--fid_network`` are at hand. Writes
RUN/eval/step_N-DATA.json and .md and prints the table. ``--data`` evaluates another source:
every file of a folder, or ``--split`` of a TFDS data set (e.g. 'test[:2000]'). ``--protocol``
evaluates as a published paper did (docs/evaluation.md): its ImageNet validation images, crop,
size, colourfulness formula, FID network and reference set. Several processes (launch/local.py,
a SLURM or Open MPI job, a TPU pod; JAX_COORDINATOR_ADDRESS & co.) evaluate together, each its
share of the images, over every device. ``--video`` evaluates on colour films instead
(colorjax/inference/film_evaluation.py): flicker frame by frame and smoothed against each
film's own, and ab error, in RUN/eval/step_N-video.json and .md.
"""
import dataclasses
import glob
import os
import sys

import jax
from absl import flags, logging

from colorjax import evaluation
from colorjax.core import parallel, startup, validation
from colorjax.data import protocols  # TensorFlow loads now, while its start-up lines are hidden
from colorjax.data import sources
from colorjax.data import video as video_data
from colorjax.inference import Colorizer, film_evaluation
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
_PROTOCOL = flags.DEFINE_string(
    'protocol', None, "Evaluate as the papers do: 'coltran-fid5k' (ColTran, UViM), 'val5k' "
    "(DDColor) or 'ctest10k' (Larsson et al.'s list), on --data=tfds:imagenet2012; see "
    'docs/evaluation.md.', flag_values=FLAGS)
_FILE_LIST = flags.DEFINE_string(
    'file_list', None, "--protocol=ctest10k: the path of ctest10k.txt; coltran-fid5k: the folder "
    "of big_vision's eval_file_names.txt and reference_file_names.txt (optional: without it, "
    "TFDS's read order picks the images).", flag_values=FLAGS)
_DATA_DIR = flags.DEFINE_string('data_dir', None, "--protocol's TFDS folder (default: the run's "
                                'data.data_dir).', flag_values=FLAGS)
_RESOLUTION = flags.DEFINE_integer(
    'resolution', None, "--protocol: the network colorizes at this size, its ab is resized to "
    "the protocol's (default: the run's image_size).", flag_values=FLAGS)
_FID_NETWORK = flags.DEFINE_enum(
    'fid_network', 'standard', list(inception.NETWORKS),
    "The Inception network FID is computed with: 'standard' (the TF graph FID was defined with, "
    "pytorch-fid's pt_inception-2015-12-05-6726825d.pth; what most papers report), "
    "'torchvision' (inception_v3_google-0cc3c7bd.pth) or 'keras' "
    f'({keras_weights.INCEPTION_V3_NOTOP}); default with --protocol: its own.', flag_values=FLAGS)
_FID_WEIGHTS = flags.DEFINE_string(
    'fid_weights', None, "The --fid_network's weight file; default: its file in torch.hub's "
    "cache (~/.cache/torch/hub/checkpoints, where pytorch-fid and torchvision download it) or, "
    "for 'keras', in ~/.keras/models; no FID when it is not there.", flag_values=FLAGS)
_OUTPUT = flags.DEFINE_string('output', None, 'Folder for the report (default: RUN/eval).',
                              flag_values=FLAGS)
_VIDEO = flags.DEFINE_multi_string('video', [], 'Colour films to evaluate flicker and ab error '
                                   'on (files, folders, globs; repeatable) instead of images.',
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


def load_fid(network, path):
  """The FID network, or None (with a note on stderr) when no --fid_weights was given and its
  weights are not in their download cache."""
  if not path:
    try:
      path = inception.find_weights(inception.NETWORKS[network])
    except validation.UserError as e:
      print(f'FID skipped: {e}', file=sys.stderr)
      return None
  return evaluation.load_fid(network, path)


def check_protocol():
  """The --protocol, after checking the flags that go with it (before the run loads)."""
  if not _PROTOCOL.value:
    for flag in ('file_list', 'data_dir', 'resolution'):
      if FLAGS[flag].present:
        raise validation.UserError(f'--{flag} goes with --protocol only.')
    return None
  if _SPLIT.value:
    raise validation.UserError('--split does not go with --protocol: the protocol fixes the '
                               'images.')
  return protocols.check(_PROTOCOL.value, _DATA.value or protocols.SOURCE, _FILE_LIST.value)


def protocol_report(run, protocol):
  """The report of ``run`` under ``protocol``."""
  if _RESOLUTION.value is not None:
    runs.check_resolution(run, _RESOLUTION.value)
  network = (_FID_NETWORK.value if FLAGS['fid_network'].present else protocol.fid_network)
  data_dir = run.config.data.data_dir if _DATA_DIR.value is None else _DATA_DIR.value
  return evaluation.measure_protocol(run, protocol, load_fid(network, _FID_WEIGHTS.value),
                                     data_dir, _FILE_LIST.value, _RESOLUTION.value,
                                     progress=True)


def find_films(arguments):
  """The video files named by ``arguments`` (files, folders searched recursively, globs)."""
  found = []
  for argument in arguments:
    if os.path.isdir(argument):
      found += sources.list_images(argument, video_data.EXTENSIONS)
    elif os.path.isfile(argument):
      found.append(argument)
    else:
      found += sorted(p for p in glob.glob(argument, recursive=True) if video_data.is_video(p))
  if not found:
    raise validation.UserError(f'--video found no films in {", ".join(arguments)} (looked for '
                               f'{", ".join(video_data.EXTENSIONS)}).')
  return found


def evaluate_films():
  """``--video``: the films' report, written and printed; exits 1 if a film failed."""
  for flag in ('data', 'split', 'protocol', 'fid_weights'):
    if FLAGS[flag].present:
      raise validation.UserError(f'--{flag} does not go with --video.')
  films = find_films(_VIDEO.value)
  video_data.av()
  run = runs.load(_WORKDIR.value, _CHECKPOINT.value)
  report = film_evaluation.measure(Colorizer.for_run(run), films, run.step, run.workdir)
  path = film_evaluation.write(report, _OUTPUT.value or f'{run.workdir}/eval')
  print(film_evaluation.markdown(report))
  print(f'Wrote {path} and the .md next to it.')
  if report['failed']:
    sys.exit(1)


def main(argv):
  startup.mark('imports')
  if len(argv) > 1 or not (_WORKDIR.value or _CHECKPOINT.value):
    raise validation.UserError('give --workdir=RUN (or --checkpoint=PATH) and flags only.')
  if _VIDEO.value:
    return evaluate_films()
  protocol = check_protocol()
  parallel.initialize()  # several processes: from JAX_COORDINATOR_ADDRESS & co. or the cluster
  run = runs.load(_WORKDIR.value, _CHECKPOINT.value)
  startup.mark('restore')
  if protocol:
    report = protocol_report(run, protocol)
  else:
    if _DATA.value:
      run = with_data(run, _DATA.value, _SPLIT.value)
    report = evaluation.measure(run, load_fid(_FID_NETWORK.value, _FID_WEIGHTS.value),
                                progress=True)
  startup.mark('evaluation', compiled=True)
  logging.info('%s', startup.line('the report'))
  path = evaluation.write(report, _OUTPUT.value or f'{run.workdir}/eval')
  if jax.process_index() == 0:
    print(evaluation.markdown(report))
    print(f'Wrote {path} and the .md next to it.')
