"""``colorjax colorize``: people's photos in colour with a trained checkpoint.

  colorjax colorize --workdir=runs/demo photos/ old.jpg 'scans/**/*.png' --output=out/
  colorjax colorize --exported=demo.cjx photos/ --output=out/    (see colorjax export)

The network sees each image's L channel at ``--resolution`` (long side, padded to a square, so
every batch has one shape and compiles once); the predicted ab is upsampled to the original size
and joined with the original full-resolution L, so the result keeps the input's size and detail.
Outputs go only under ``--output``, at each input's relative path; inputs are never overwritten;
an unreadable or oversized file is reported and skipped, and the command then exits non-zero.
No TensorFlow here.
"""
import collections
import glob
import os
import sys

import jax
import numpy as np
import tqdm
from absl import flags
from PIL import Image

from colorjax import artifact, color, runs, validation
from colorjax.data import images
from colorjax.data.sources import list_images

_WORKDIR = flags.DEFINE_string('workdir', None, 'Training run to use (its latest checkpoint).')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'One checkpoint folder, RUN/checkpoints/N.')
_EXPORTED = flags.DEFINE_string('exported', None, 'A file written by colorjax export.')
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


def distinct_names(found):
  """``found`` with relative names made distinct once extensions change: photo.jpg and
  photo.png would both become photo.png, so they become photo_jpg and photo_png."""
  stems = collections.Counter(os.path.splitext(r)[0].lower() for _, r in found if r)
  renamed = []
  for path, relative in found:
    if relative and stems[os.path.splitext(relative)[0].lower()] > 1:
      stem, ext = os.path.splitext(relative)
      relative = f'{stem}_{ext[1:]}{ext}'
    renamed.append((path, relative))
  return renamed


def output_path(output_dir, relative, fmt, suffix=''):
  """The output file for an input's relative name; never outside ``output_dir``."""
  stem = os.path.splitext(relative)[0] + suffix + ('.png' if fmt == 'png' else '.jpg')
  root = os.path.realpath(output_dir)
  path = os.path.realpath(os.path.join(root, stem))
  if os.path.commonpath([root, path]) != root:
    raise images.ImageError('unsafe name', f'{relative!r} would be written outside {output_dir}')
  return path


def load_predictor(workdir, checkpoint_path, exported, resolution):
  """(predict(L [B, R, R, 1]) -> ab, R) from a run, one checkpoint or an exported file."""
  if exported:
    if workdir or checkpoint_path:
      raise validation.UserError('give one of --workdir, --checkpoint and --exported.')
    colorizer = artifact.Colorizer(exported)
    if resolution not in (None, colorizer.resolution):
      raise validation.UserError(f'--resolution={resolution} is not allowed; {exported} was '
                                 f'exported at {colorizer.resolution} (export it again with '
                                 f'--resolution={resolution}).')
    return colorizer, colorizer.resolution
  run = runs.load(workdir, checkpoint_path)
  resolution = resolution or run.config.image_size
  runs.check_resolution(run, resolution)
  predict = jax.jit(run.task.predict)
  return (lambda L: predict(run.state, L)), resolution


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
  if not inputs or not _OUTPUT.value or not (_WORKDIR.value or _CHECKPOINT.value
                                             or _EXPORTED.value):
    raise validation.UserError('give --workdir=RUN (or --checkpoint=PATH or --exported=FILE), '
                               '--output=DIR and at least one input file, folder or glob.')
  predict, resolution = load_predictor(_WORKDIR.value, _CHECKPOINT.value, _EXPORTED.value,
                                       _RESOLUTION.value)
  todo = distinct_names(find_inputs(inputs))
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
    ab = np.asarray(jax.device_get(predict(L)))
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
