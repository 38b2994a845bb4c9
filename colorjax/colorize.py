"""``colorjax colorize``: people's photos in colour with a trained checkpoint.

  colorjax colorize --workdir=runs/demo photos/ old.jpg 'scans/**/*.png' --output=out/

The network sees each image's L channel at ``--resolution`` (long side, padded to a square, so
every batch has one shape and compiles once); the predicted ab is upsampled to the original size
and joined with the original full-resolution L, so the result keeps the input's size and detail.
Outputs go only under ``--output``, at each input's relative path; inputs are never overwritten;
an unreadable or oversized file is reported and skipped, and the command then exits non-zero.
No TensorFlow here.
"""
import glob
import json
import os
import sys

import jax
import ml_collections
import numpy as np
import tqdm
from absl import flags
from PIL import Image

from colorjax import checkpoint, color, parallel, tasks, train, validation
from colorjax.data import images
from colorjax.data.sources import list_images

_WORKDIR = flags.DEFINE_string('workdir', None, 'Training run to use (its latest checkpoint).')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'One checkpoint folder, RUN/checkpoints/N.')
_OUTPUT = flags.DEFINE_string('output', None, 'Folder for the colour images.')
_RESOLUTION = flags.DEFINE_integer('resolution', None,
                                   "Network resolution (default: the run's image_size).")
_FORMAT = flags.DEFINE_enum('format', 'png', ['png', 'jpeg'], 'Output format.')
_KEEP = flags.DEFINE_boolean('keep_original', False,
                             'Also write INPUT | COLORIZED side by side (NAME_compare).')
_BATCH = flags.DEFINE_integer('batch_size', 8, 'Images per network call.')
_MAX_PIXELS = flags.DEFINE_integer('max_pixels', images.DEFAULT_MAX_PIXELS,
                                   'Larger images are skipped.')


def find_inputs(arguments):
  """[(path, relative output name)] for files, folders (recursive) and globs, in order."""
  found = []
  for argument in arguments:
    if os.path.isdir(argument):
      found += [(p, os.path.relpath(p, argument)) for p in list_images(argument)]
    elif os.path.isfile(argument):
      found.append((argument, os.path.basename(argument)))
    else:
      matches = sorted(p for p in glob.glob(argument, recursive=True) if os.path.isfile(p))
      if not matches:
        found.append((argument, None))  # reported as missing
      root = os.path.dirname(argument.split('*')[0]) or '.'
      found += [(p, os.path.relpath(p, root)) for p in matches]
  return found


def output_path(output_dir, relative, fmt, suffix=''):
  """The output file for an input's relative name; never outside ``output_dir``."""
  stem = os.path.splitext(relative)[0] + suffix + ('.png' if fmt == 'png' else '.jpg')
  root = os.path.realpath(output_dir)
  path = os.path.realpath(os.path.join(root, stem))
  if os.path.commonpath([root, path]) != root:
    raise images.ImageError('unsafe name', f'{relative!r} would be written outside {output_dir}')
  return path


def load_run(workdir=None, checkpoint_path=None):
  """(task, TrainState, config) of a run's latest checkpoint, or of one checkpoint folder."""
  step = None
  if checkpoint_path:
    checkpoint_path = os.path.realpath(checkpoint_path)
    step = int(os.path.basename(checkpoint_path))
    workdir = os.path.dirname(os.path.dirname(checkpoint_path))
  config_file = os.path.join(workdir, train.CONFIG_FILE)
  if not os.path.isfile(config_file):
    raise validation.UserError(f'{workdir} is not a colorjax run: it has no {train.CONFIG_FILE}.')
  with open(config_file) as f:
    config = ml_collections.FrozenConfigDict(ml_collections.ConfigDict(json.load(f)))
  task = tasks.get(config.task)
  mesh = parallel.make_mesh()
  checkpoints = checkpoint.Checkpointer(workdir)
  try:
    if checkpoints.latest_step() is None:
      raise validation.UserError(f'{workdir} holds no checkpoint.')
    state, _ = checkpoints.restore(train.init_state(task, config, mesh), step)
  finally:
    checkpoints.close()
  return task, state, config


def _network_input(rgb, resolution):
  """Long side -> resolution, padded (edge) to a square: (L [res, res, 1], (h, w) used)."""
  height, width = rgb.shape[:2]
  scale = resolution / max(height, width)
  size = (max(1, round(width * scale)), max(1, round(height * scale)))
  small = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))
  L = color.rgb_to_lab(color.uint8_to_unit(small, dtype=np.float32, xp=np), xp=np)[..., :1]
  padded = np.pad(L, ((0, resolution - size[1]), (0, resolution - size[0]), (0, 0)), 'edge')
  return padded, (size[1], size[0])


def _upsample(ab, size):
  """ab [h, w, 2] -> [H, W, 2] (bilinear, per channel, float)."""
  return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(ab[..., c]), 'F')
                              .resize((size[1], size[0]), Image.Resampling.BILINEAR))
                   for c in range(2)], axis=-1)


def colorize_full_resolution(rgb, ab_small, used):
  """Original L joined with the predicted ab upsampled to the original size -> uint8 RGB."""
  L = color.rgb_to_lab(color.uint8_to_unit(rgb, dtype=np.float32, xp=np), xp=np)[..., :1]
  ab = _upsample(ab_small[:used[0], :used[1]], rgb.shape[:2])
  return np.asarray(color.unit_to_uint8(color.join_l_ab(L, ab, xp=np), xp=np))


def main(argv):
  inputs = argv[1:]
  if not inputs or not _OUTPUT.value or not (_WORKDIR.value or _CHECKPOINT.value):
    raise validation.UserError('give --workdir=RUN (or --checkpoint=PATH), --output=DIR and at '
                               'least one input file, folder or glob.')
  task, state, config = load_run(_WORKDIR.value, _CHECKPOINT.value)
  resolution = _RESOLUTION.value or config.image_size
  predict = jax.jit(lambda s, L: task.predict(s, L))
  todo = find_inputs(inputs)
  inputs_real = {os.path.realpath(p) for p, _ in todo}
  failures, written = [], 0
  batch = []

  def flush():
    nonlocal written
    if not batch:
      return
    L = np.zeros((_BATCH.value, resolution, resolution, 1), np.float32)
    for i, item in enumerate(batch):
      L[i] = item['L']
    ab = np.asarray(jax.device_get(predict(state, L)))
    for item, ab_small in zip(batch, ab):
      result = colorize_full_resolution(item['rgb'], ab_small, item['used'])
      _save(item['out'], result)
      if _KEEP.value:
        _save(item['compare'], np.concatenate([item['rgb'], result], axis=1))
      written += 1
    batch.clear()

  for path, relative in tqdm.tqdm(todo, unit='image', desc='colorize'):
    try:
      if relative is None:
        raise images.ImageError('missing', 'no such file, folder or matching glob')
      out = output_path(_OUTPUT.value, relative, _FORMAT.value)
      if out in inputs_real:
        raise images.ImageError('unsafe name', 'the output would overwrite an input')
      rgb = images.decode(images.read_bytes(path), max_pixels=_MAX_PIXELS.value)
      L, used = _network_input(rgb, resolution)
      batch.append({'rgb': rgb, 'L': L, 'used': used, 'out': out,
                    'compare': output_path(_OUTPUT.value, relative, _FORMAT.value, '_compare')})
    except images.ImageError as e:
      failures.append((path, str(e)))
      continue
    if len(batch) == _BATCH.value:
      flush()
  flush()
  print(f'Colorized {written} image(s) into {_OUTPUT.value}; {len(failures)} failed.')
  for path, reason in failures:
    print(f'  failed: {path}: {reason}', file=sys.stderr)
  if failures:
    sys.exit(1)


def _save(path, image):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(image).save(path, **({'quality': 95} if path.endswith('.jpg') else {}))
