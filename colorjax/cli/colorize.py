"""``colorjax colorize``: people's photos and films in colour with a trained checkpoint.

  colorjax colorize --workdir=runs/demo photos/ old.jpg 'scans/**/*.png' --output=out/
  colorjax colorize --workdir=runs/demo newsreel.mp4 films/ --output=out/ [--temporal=none]
  colorjax colorize --exported=demo.cjx photos/ --output=out/    (see colorjax export; a
                                                                 .onnx file runs in ONNX Runtime)

Each image, and each frame of a film, is colorized by ``colorjax.inference.Colorizer`` at
``--resolution`` and kept at its own size with its own L; a film keeps its timestamps, rotation
and sound, and prints its frame count and flicker (colorjax/inference/video.py). Outputs go only
under ``--output``, at each input's relative path; inputs are never overwritten; an unreadable
or oversized file is reported and skipped, and the command then exits non-zero.
No TensorFlow here.
"""
import collections
import glob
import itertools
import os
import sys

import numpy as np
import tqdm
from absl import flags, logging
from PIL import Image

from colorjax.core import startup, validation
from colorjax.data import images
from colorjax.data import video as video_data
from colorjax.data.sources import list_images
from colorjax.inference import Colorizer, temporal, video

FLAGS = flags.FlagValues()  # this command's own flags (colorjax SUB --help lists them)

_WORKDIR = flags.DEFINE_string('workdir', None, 'Training run to use (its latest checkpoint).',
                               flag_values=FLAGS)
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'One checkpoint folder, RUN/checkpoints/N.',
                                  flag_values=FLAGS)
_EXPORTED = flags.DEFINE_string('exported', None, 'A file written by colorjax export (.cjx, '
                                'or .onnx for ONNX Runtime).', flag_values=FLAGS)
_OUTPUT = flags.DEFINE_string('output', None, 'Folder for the colour images.', flag_values=FLAGS)
_RESOLUTION = flags.DEFINE_integer('resolution', None,
                                   "Network resolution (default: the run's image_size).",
                                   flag_values=FLAGS)
_FORMAT = flags.DEFINE_enum('format', 'png', ['png', 'jpeg'], 'Output format.', flag_values=FLAGS)
_KEEP = flags.DEFINE_boolean('keep_original', False,
                             'Also write INPUT | COLORIZED side by side (NAME_compare).',
                             flag_values=FLAGS)
_BATCH = flags.DEFINE_integer('batch_size', 8, 'Images per network call.', flag_values=FLAGS)
_MAX_PIXELS = flags.DEFINE_integer('max_pixels', images.DEFAULT_MAX_PIXELS,
                                   'Larger images are skipped.', flag_values=FLAGS)
_TEMPORAL = flags.DEFINE_enum('temporal', 'smooth', list(temporal.METHODS), 'Films: smooth '
                              'steadies colour where the picture does not change; none colorizes '
                              'each frame alone.', flag_values=FLAGS)
_VIDEO_CODEC = flags.DEFINE_enum('video_codec', 'h264', list(video.CODECS), 'Films: the '
                                 'encoder (h264: .mp4/.mov/.mkv; vp9; ffv1: lossless, .mkv).',
                                 flag_values=FLAGS)
_CRF = flags.DEFINE_integer('crf', video.DEFAULT_CRF, 'Films: constant rate factor, lower is '
                            'better (h264: 0-51, vp9: 0-63; ffv1 ignores it).', flag_values=FLAGS)
_OVERWRITE = flags.DEFINE_boolean('overwrite', False, 'Replace outputs that exist already (an '
                                  'input is never replaced).', flag_values=FLAGS)


def find_inputs(arguments):
  """[(path, relative output name)] for files, folders (recursive) and globs, in order."""
  found = []
  for argument in arguments:
    if os.path.isdir(argument):
      found += [(p, os.path.relpath(p, argument))
                for p in list_images(argument, images.EXTENSIONS + video_data.EXTENSIONS)]
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
  extensions = collections.defaultdict(set)
  for _, relative in found:
    if relative:
      stem, ext = os.path.splitext(relative.lower())
      extensions[stem].add(ext)
  renamed = []
  for path, relative in found:
    if relative and len(extensions[os.path.splitext(relative.lower())[0]]) > 1:
      stem, ext = os.path.splitext(relative)
      relative = f'{stem}_{ext[1:]}{ext}'
    renamed.append((path, relative))
  return renamed


def output_path(output_dir, relative, ext, suffix=''):
  """The output file (ending in ``ext``) for an input's relative name; never outside
  ``output_dir``."""
  stem = os.path.splitext(relative)[0] + suffix + ext
  root = os.path.realpath(output_dir)
  path = os.path.realpath(os.path.join(root, stem))
  if os.path.commonpath([root, path]) != root:
    raise images.ImageError('unsafe name', f'{relative!r} would be written outside {output_dir}')
  return path


def is_film(path):
  """Whether ``path`` is taken as a video: by its extension, or, for a name that is neither an
  image's nor a video's, by FFmpeg finding a video stream in it."""
  if video_data.is_video(path):
    return True
  if path.lower().endswith(images.EXTENSIONS) or not os.path.isfile(path):
    return False
  try:
    video_data.Reader(path, max_pixels=1 << 62).close()
  except video_data.VideoError:
    return False
  return True


def plan_outputs(todo, output_dir, fmt, keep_original, overwrite, codec='h264'):
  """[(input path, output, side-by-side or None, error or None, is a film)]: every file this
  call will
  write, claimed once. Two inputs that would share an output (same names from two folders, or
  a name equal to another's NAME_compare) get distinct ones (NAME-2, NAME-3, …); an input, or a
  file that exists already (unless ``overwrite``), is never written over."""
  inputs = {os.path.realpath(p) for p, _ in todo}
  claimed, plan = set(), []
  for path, relative in todo:
    try:
      if relative is None:
        raise images.ImageError('missing', 'no such file, folder or matching glob')
      stem, ext = os.path.splitext(relative)
      film = is_film(path)
      out_ext = video.output_extension(relative, codec) if film else \
          ('.png' if fmt == 'png' else '.jpg')
      for n in itertools.count(1):
        name = relative if n == 1 else f'{stem}-{n}{ext}'
        paths = [output_path(output_dir, name, out_ext)]
        if keep_original and not film:
          paths.append(output_path(output_dir, name, out_ext, '_compare'))
        if not claimed & set(paths):
          break
      claimed.update(paths)
      for out in paths:
        if out in inputs:
          raise images.ImageError('unsafe name', f'{out} would overwrite an input')
        if os.path.lexists(out) and not overwrite:
          raise images.ImageError('exists', f'{out} exists already (--overwrite to replace it)')
      plan.append((path, paths[0], paths[1] if len(paths) > 1 else None, None, film))
    except images.ImageError as e:
      plan.append((path, None, None, str(e), False))
  return plan


def main(argv):
  startup.mark('imports')
  inputs = argv[1:]
  sources = [bool(_WORKDIR.value or _CHECKPOINT.value), bool(_EXPORTED.value)]
  if not inputs or not _OUTPUT.value or not any(sources):
    raise validation.UserError('give --workdir=RUN (or --checkpoint=PATH or --exported=FILE), '
                               '--output=DIR and at least one input file, folder or glob.')
  if all(sources):
    raise validation.UserError('give one of --workdir, --checkpoint and --exported.')
  highest_crf = video.HIGHEST_CRF.get(_VIDEO_CODEC.value)
  if highest_crf is not None and not 0 <= _CRF.value <= highest_crf:
    raise validation.UserError(f'--crf={_CRF.value} is not allowed; use 0 to {highest_crf} for '
                               f'--video_codec={_VIDEO_CODEC.value} (lower is better).')
  if _EXPORTED.value:
    colorizer = Colorizer.from_exported(_EXPORTED.value, _RESOLUTION.value, _BATCH.value)
  else:
    colorizer = Colorizer.from_run(_WORKDIR.value, _CHECKPOINT.value, _RESOLUTION.value,
                                   _BATCH.value)
  startup.mark('restore')
  plan = plan_outputs(distinct_names(find_inputs(inputs)), _OUTPUT.value, _FORMAT.value,
                      _KEEP.value, _OVERWRITE.value, _VIDEO_CODEC.value)
  if not plan:
    raise validation.UserError(f'found no images in {", ".join(inputs)} (looked recursively '
                               f'for {", ".join(images.EXTENSIONS + video_data.EXTENSIONS)}).')
  if any(film for *_, film in plan):
    video_data.av()   # PyAV, or one sentence before any file is written
  failures = [(path, error) for path, _, _, error, _ in plan if error]
  written, films, batch, reported = 0, 0, [], []

  def flush():
    nonlocal written
    for item, result in zip(batch, colorizer.colorize([item['rgb'] for item in batch])):
      _save(item['out'], result)
      if item['compare']:
        _save(item['compare'], np.concatenate([item['rgb'], result], axis=1))
      written += 1
    if batch and not reported:
      startup.mark('first images', compiled=True)
      logging.info('%s', startup.line(f'the first {len(batch)} image(s)'))
      reported.append(True)
    batch.clear()

  for path, out, compare, error, film in tqdm.tqdm(plan, unit='file', desc='colorize'):
    if error:
      continue
    if film:
      films += _colorize_film(colorizer, path, out, failures)
      continue
    try:
      rgb = images.decode(images.read_bytes(path), max_pixels=_MAX_PIXELS.value)
    except images.ImageError as e:
      failures.append((path, str(e)))
      continue
    batch.append({'rgb': rgb, 'out': out, 'compare': compare})
    if len(batch) == _BATCH.value:
      flush()
  flush()
  print(f'Colorized {written} image(s){f" and {films} film(s)" if films else ""} into '
        f'{_OUTPUT.value}; {len(failures)} failed.')
  for path, reason in failures:   # a film's reason is a sentence naming it already
    print(f'  failed: {reason if reason.startswith(path) else f"{path}: {reason}"}',
          file=sys.stderr)
  if failures:
    sys.exit(1)


def _colorize_film(colorizer, path, out, failures):
  """One film (with a progress bar of its frames); whether it was written."""
  with tqdm.tqdm(unit='frame', desc=os.path.basename(path), leave=False) as bar:
    try:
      report = colorizer.colorize_video(path, out, _TEMPORAL.value, _VIDEO_CODEC.value,
                                        _CRF.value, _MAX_PIXELS.value, bar,
                                        overwrite=_OVERWRITE.value)
    except video_data.VideoError as e:
      failures.append((path, str(e)))
      return False
  print(f'{out}: {report.summary()}')
  return True


def _save(path, image):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(image).save(path, **({'quality': 95} if path.endswith('.jpg') else {}))
