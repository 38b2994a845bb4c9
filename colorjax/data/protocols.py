"""Named ImageNet evaluation protocols of the colorization literature (docs/evaluation.md).

A protocol fixes which validation images are colorized and in what order, how each is brought
to image_size² (``preparation``), which images the FID compares them with (``reference``), and
the Inception network the papers measured with (``fid_network``):

- ``coltran-fid5k`` (ColTran, UViM): the first 5,000 images in TFDS's read order, centre-cropped
  to a square and area-resized; the reference is images 10,000-15,000 of the same order.
  big_vision publishes both sets as file lists; given their folder, the images are chosen by
  name, which does not depend on how TFDS laid out the prepared set.
- ``val5k`` (DDColor): ILSVRC2012_val_00000001 … 00005000, the whole image resized to 256²
  bilinearly (no crop); the reference is the same images' ground truth.
- ``ctest10k`` (Larsson et al.): the 10,000 images of a file list the user gives, prepared as
  val5k; the reference is the same images' ground truth.

Images come out as ``{'image': uint8 [S, S, 3], 'index': int64, 'file_name': string}``;
``index`` is the image's place in the protocol's order (read position, file number or list
line), and a process (``Shard``) gets the images whose index is its own modulo the count, so
that processes together cover every image once. Images that cannot be decoded are dropped and
counted in a pipeline.SkipLog.
"""
import dataclasses
import os
import re

import numpy as np
import tensorflow as tf

from colorjax.core import parallel
from colorjax.core.parallel import Shard
from colorjax.data import images, pipeline
from colorjax.data.sources import DataError, tfds_builder

SOURCE = 'tfds:imagenet2012'
CROP_AREA, SQUASH_BILINEAR = 'centre-crop-area', 'squash-bilinear'
READ_ORDER, FILE_NUMBER, FILE_LIST = 'read-order', 'file-number', 'file-list'
_VAL_NAME = re.compile(r'ILSVRC2012_val_(\d{8})\.JPEG')
# big_vision's names for the two ColTran lists, in the folder it calls FID_DATA_DIR.
COLTRAN_LISTS = ('eval_file_names.txt', 'reference_file_names.txt')
# The Inception input as a protocol's code made it from RGB in [0, 1], x * scale + shift (per
# channel where tuples), where it is not [-1, 1]. ColTran: x255 / 128 - 1. DDColor: x / 2 + 1/2
# (its comment says "[-1, 1] -> [0, 1]", but its images are already in [0, 1]), then
# torchvision's transform_input formula x * std / 0.5 + (mean - 0.5) / 0.5.
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
COLTRAN_INPUT = (255 / 128, -1.0)
DDCOLOR_INPUT = (_IMAGENET_STD,
                 tuple(s + 2 * m - 1 for m, s in zip(_IMAGENET_MEAN, _IMAGENET_STD)))


@dataclasses.dataclass(frozen=True)
class Protocol:
  """One evaluation protocol.

  ``order``: READ_ORDER (positions in TFDS's default read order), FILE_NUMBER (the number in
  ILSVRC2012_val_NNNNNNNN.JPEG) or FILE_LIST (lines of a list). ``reference``: (start, stop)
  positions of a disjoint FID reference set in the same order, or None for the evaluated images'
  own ground truth. ``dct_method``: the JPEG decoder's inverse DCT as tf.io.decode_jpeg names it:
  TensorFlow's default INTEGER_FAST where the protocol decoded through TFDS, INTEGER_ACCURATE
  (libjpeg's default, as OpenCV and Pillow decode) elsewhere; they differ by up to 5 levels.
  """
  name: str
  fid_network: str            # 'standard' (TTUR / TF-GAN / pytorch-fid Inception) | 'torchvision'
  count: int
  order: str
  preparation: str
  dct_method: str
  reference: tuple = None
  fid_input: tuple = None               # (scale, shift), see above; None: [-1, 1]
  colourfulness: str = 'signed'         # or 'absolute': of |R - G| and |(R + G) / 2 - B|
  split: str = 'validation'
  image_size: int = 256
  citation: str = ''


PROTOCOLS = {p.name: p for p in (
    Protocol('coltran-fid5k', 'standard', 5000, READ_ORDER, CROP_AREA, 'INTEGER_FAST',
             (10000, 15000), COLTRAN_INPUT,
             citation='Kumar et al., Colorization Transformer (ICLR 2021); big_vision '
                      'evaluators/proj/uvim/coltran_fid.py'),
    Protocol('val5k', 'torchvision', 5000, FILE_NUMBER, SQUASH_BILINEAR, 'INTEGER_ACCURATE',
             fid_input=DDCOLOR_INPUT, colourfulness='absolute',
             citation='Kang et al., DDColor (ICCV 2023); DDColor basicsr/data/lab_dataset.py'),
    Protocol('ctest10k', 'torchvision', 10000, FILE_LIST, SQUASH_BILINEAR, 'INTEGER_ACCURATE',
             fid_input=DDCOLOR_INPUT, colourfulness='absolute',
             citation='Larsson et al., Learning Representations for Automatic Colorization '
                      '(ECCV 2016): ctest10k.txt'),
)}


def _list_paths(protocol, file_list):
  """(evaluated list, reference list or None) for the protocol's file_list argument."""
  if protocol.order == READ_ORDER:
    return tuple(os.path.join(file_list, name) for name in COLTRAN_LISTS)
  return file_list, None


def read_file_list(path, count):
  """The image file names of a list, in order: one image a line, its path first (any folders
  before the name are ignored, text after a space too, as in ctest10k.txt's labels); blank lines
  are skipped. One sentence naming the file and line for anything else, and for a list that does
  not hold ``count`` distinct names."""
  try:
    with open(path, encoding='utf-8') as f:
      lines = f.read().splitlines()
  except (OSError, UnicodeDecodeError) as e:
    reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
    raise DataError(f"Cannot read the file list '{path}': {reason}.") from None
  names, seen = [], {}
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    name = line.split()[0].rsplit('/', 1)[-1]
    if not _VAL_NAME.fullmatch(name):
      raise DataError(f"File list '{path}', line {number}: {line.strip()[:80]!r} does not name "
                      'an ImageNet validation image (ILSVRC2012_val_NNNNNNNN.JPEG).')
    if name in seen:
      raise DataError(f"File list '{path}', line {number}: {name} is already on line "
                      f'{seen[name]}.')
    seen[name] = number
    names.append(name)
  if len(names) != count:
    raise DataError(f"File list '{path}' names {len(names)} images; the protocol takes {count}.")
  return names


def check(protocol_name, source, file_list=None):
  """The Protocol named ``protocol_name``, after checking that it can run on ``source`` with
  ``file_list``; one sentence (DataError) otherwise."""
  protocol = PROTOCOLS.get(protocol_name)
  if protocol is None:
    raise DataError(f'{protocol_name!r} is not an evaluation protocol; use '
                    f"{', '.join(map(repr, PROTOCOLS))}.")
  if source != SOURCE:
    raise DataError(f"Protocol {protocol.name} evaluates ImageNet's validation images from "
                    f'{SOURCE}, not {source!r}.')
  if protocol.order == FILE_LIST and not file_list:
    raise DataError(f'Protocol {protocol.name} takes its images from a file list; give '
                    '--file_list=PATH of ctest10k.txt.')
  if file_list:
    if protocol.order == FILE_NUMBER:
      raise DataError(f'Protocol {protocol.name} takes no file list: its images are '
                      f'ILSVRC2012_val_00000001 to {protocol.count:08d}.')
    if protocol.order == READ_ORDER and not os.path.isdir(file_list):
      raise DataError(f"Protocol {protocol.name}'s file lists are a folder holding big_vision's "
                      f"{' and '.join(COLTRAN_LISTS)}; '{file_list}' is not a folder.")
    evaluated, reference = _list_paths(protocol, file_list)
    read_file_list(evaluated, protocol.count)
    if reference:
      read_file_list(reference, protocol.reference[1] - protocol.reference[0])
  return protocol


def _examples(protocol, data_dir):
  """(file_name, encoded image) of the whole split in TFDS's default read order."""
  import tensorflow_datasets as tfds
  builder = tfds_builder('imagenet2012', data_dir)
  try:
    ds = builder.as_dataset(split=protocol.split, shuffle_files=False,
                            decoders={'image': tfds.decode.SkipDecoding()})
  except (AssertionError, FileNotFoundError) as e:
    raise DataError(f"TFDS data set 'imagenet2012' is not prepared in {builder.data_dir_root}: "
                    'prepare it once with `colorjax prepare tfds:imagenet2012`.') from e
  return ds.map(lambda example: (example['file_name'], example['image']))


def _indexed(protocol, data_dir, file_list, reference, shard):
  """(index, file_name, encoded image) of this process's images, in read order."""
  ds = _examples(protocol, data_dir)
  if protocol.order == READ_ORDER and not file_list:
    start, stop = protocol.reference if reference else (0, protocol.count)
    ds = ds.take(stop).enumerate().skip(start)
    ds = ds.map(lambda position, example: (position - start,) + example)
  elif protocol.order == FILE_NUMBER:
    def number(name, payload):
      digits = tf.strings.regex_replace(name, r'^ILSVRC2012_val_(\d{8})\.JPEG$', r'\1')
      ok = tf.strings.regex_full_match(name, _VAL_NAME.pattern)
      index = tf.where(ok, tf.strings.to_number(tf.where(ok, digits, '0'), tf.int64) - 1, -1)
      return tf.where(index < protocol.count, index, -1), name, payload

    ds = ds.map(number)
  else:
    evaluated, reference_list = _list_paths(protocol, file_list)
    if protocol.order == READ_ORDER:
      start, stop = protocol.reference if reference else (0, protocol.count)
      names = read_file_list(reference_list if reference else evaluated, stop - start)
    else:
      names = read_file_list(evaluated, protocol.count)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(names),
                                            tf.range(len(names), dtype=tf.int64)), -1)
    ds = ds.map(lambda name, payload: (table.lookup(name), name, payload))
  return ds.filter(lambda index, name, payload: (index >= 0)
                   & (index % shard.count == shard.index))


def _prepare(protocol, rgb):
  """uint8 [H, W, 3] -> uint8 [S, S, 3] as the protocol prepares its images."""
  size = protocol.image_size
  if protocol.preparation == CROP_AREA:
    side = tf.reduce_min(tf.shape(rgb)[:2])
    rgb = tf.image.resize_with_crop_or_pad(rgb, side, side)
    resized = tf.image.resize(rgb, (size, size), method='area', antialias=True)
  else:
    resized = tf.image.resize(tf.cast(rgb, tf.float32), (size, size), method='bilinear',
                              antialias=False)
  return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def _images(protocol, data_dir, file_list, reference, shard, skip_log, stop):
  skip_log = skip_log or pipeline.SkipLog(f'protocol {protocol.name}')
  ds = _indexed(protocol, data_dir, file_list, reference, shard)
  if stop is not None:
    ds = ds.take_while(lambda *unused: tf.logical_not(stop))

  def pillow(name, payload):
    try:
      return images.decode(payload), True
    except images.ImageError as e:
      skip_log.record(name, e.reason, str(e))
      return np.zeros((1, 1, 3), np.uint8), False

  def decode(index, name, payload):
    plain = pipeline.plain_jpeg_short_side(payload, images.DEFAULT_MAX_PIXELS) > 0
    rgb, ok = tf.cond(
        plain, lambda: (tf.io.decode_jpeg(payload, channels=3, dct_method=protocol.dct_method),
                        tf.constant(True)),
        lambda: tuple(tf.numpy_function(pillow, [name, payload], [tf.uint8, tf.bool])))
    return {'image': tf.ensure_shape(rgb, [None, None, 3]), 'ok': tf.ensure_shape(ok, []),
            'index': index, 'file_name': name}

  size = protocol.image_size
  return (ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
          .filter(lambda element: element['ok'])
          .map(lambda element: {'image': tf.ensure_shape(_prepare(protocol, element['image']),
                                                         [size, size, 3]),
                                'index': element['index'], 'file_name': element['file_name']},
               num_parallel_calls=tf.data.AUTOTUNE, deterministic=True))


def evaluated_images(protocol, data_dir='', file_list=None, shard=Shard(), skip_log=None,
                     stop=None):
  """This process's images to colorize under ``protocol`` (a Protocol, see ``check``), as a
  tf.data.Dataset of {'image', 'index', 'file_name'} in TFDS read order; undecodable images
  are dropped and counted in ``skip_log`` (a pipeline.SkipLog) when given. Once ``stop`` (a
  boolean tf.Variable) is set, no more images are read (pipeline.padded_batches uses it)."""
  return _images(protocol, data_dir, file_list, False, shard, skip_log, stop)


def reference_images(protocol, data_dir='', file_list=None, shard=Shard(), skip_log=None,
                     stop=None):
  """This process's FID reference images under ``protocol``, as ``evaluated_images``: a
  disjoint set where the protocol has one, else the evaluated images themselves (their ground
  truth)."""
  return _images(protocol, data_dir, file_list, protocol.reference is not None, shard, skip_log,
                 stop)


def images_per_process(protocol, shard, reference=False):
  """How many of the protocol's images (or reference images) fall to process ``shard.index``."""
  start, stop = protocol.reference if reference and protocol.reference else (0, protocol.count)
  return len(range(shard.index, stop - start, shard.count))


def batches(protocol, data_dir, file_list, shard, batch_size, skip_logs, reference=False,
            lab=False, threads=0):
  """This process's evaluated (or ``reference``) images as pipeline.padded_batches,
  ``{"rgb"|"lab", "mask"}``, as many on every process (the images a set lacks cost no steps);
  the pass's SkipLog is appended to ``skip_logs``."""
  skip_log = pipeline.SkipLog(f'protocol {protocol.name}' + (' (reference)' if reference else ''),
                              images_per_process(protocol, shard, reference))
  skip_logs.append(skip_log)
  stop = tf.Variable(False, trainable=False)
  chosen = reference_images if reference else evaluated_images
  ds = chosen(protocol, data_dir, file_list, shard, skip_log, stop)
  size = protocol.image_size
  padding = {'lab' if lab else 'rgb': np.zeros((batch_size, size, size, 3),
                                               np.float32 if lab else np.uint8),
             'mask': np.zeros(batch_size, bool)}
  return parallel.until_every_process_is_done(pipeline.padded_batches(
      ds.map(lambda element: element['image']), batch_size, None, stop, skip_log, lab, threads),
      padding)
