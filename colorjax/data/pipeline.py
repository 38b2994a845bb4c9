"""The tf.data input pipeline: payload -> decode -> validate -> crop/flip -> batch -> numpy.

Batches leave the host as uint8 RGB (``{"rgb": [B, H, W, 3]}``; unpaired training gets
``{"a": …, "b": …}``, A shown as grayscale) so that Lab conversion happens on the device. With
``data.color_space='lab'`` the pipeline emits float32 Lab instead (``{"lab": …}``), converted
inside tf.data by the same formulas as on the device (colorjax.core.color).

Randomness is a pure function of (seed, element index): shuffling uses seeded tf.data ops, and
each element's resize scale, crop and flip come from stateless RNG keyed by its index in the
stream. A training stream can therefore restart from any position (``Batches.state``) and
continue exactly, without replaying its epoch.
"""
import atexit
import concurrent.futures
import hashlib
import math
import threading
import weakref

import numpy as np
import tensorflow as tf
from absl import logging

from colorjax.core import color
from colorjax.core.parallel import Shard
from colorjax.data import images
from colorjax.data.sources import DataError, FileSource, open_source

# The input pipeline runs on the host CPU; keep TensorFlow off any accelerator JAX uses.
tf.config.set_visible_devices([], 'GPU')

_LOGGED_PATHS = 10  # skipped files named one by one in the log; after that only counts


class SkipLog:
  """Counts the images a stream dropped, by reason, once per distinct image (thread-safe)."""

  def __init__(self, description, total=None):
    self.description = description
    self.total = total  # distinct images in the stream, when known
    self._lock = threading.Lock()
    self._bad = {}  # key -> reason

  def record(self, key, reason, detail=''):
    """Notes one image dropped for ``reason``."""
    with self._lock:
      if key in self._bad:
        return
      self._bad[key] = reason
      if len(self._bad) <= _LOGGED_PATHS:
        name = key.decode(errors='replace') if isinstance(key, bytes) and len(key) < 4096 else ''
        logging.warning('Skipping image %s from %s: %s', name or '(encoded bytes)',
                        self.description, detail or reason)

  def counts(self):
    """{reason: distinct images dropped}."""
    with self._lock:
      counts = {}
      for reason in self._bad.values():
        counts[reason] = counts.get(reason, 0) + 1
      return counts

  def all_dropped(self):
    """True once every image of a stream of known size has been dropped."""
    with self._lock:
      return bool(self.total) and len(self._bad) >= self.total

  def all_dropped_error(self):
    return DataError(f'Every image of {self.description} was skipped: {self.summary()}.')

  def summary(self):
    counts = self.counts()
    dropped = sum(counts.values())
    of = f' of {self.total}' if self.total else ''
    detail = ', '.join(f'{n} {reason}' for reason, n in sorted(counts.items()))
    return f'{dropped}{of} images skipped from {self.description}' + (f' ({detail})' if dropped
                                                                        else '')


NATIVE, PILLOW = 0, 1  # how an image is decoded


def _tf_dct_ratio(short_side, min_short_side):
  """images.dct_ratio in the graph."""
  ratios = tf.constant([1, 2, 4, 8])
  covers = (short_side + ratios - 1) // ratios >= min_short_side
  return tf.reduce_max(tf.where(covers, ratios, 1))


# An EXIF orientation other than 1 (SHORT tag 0x0112, count 1, value 2-8), little- or
# big-endian, as it appears in a JPEG's APP1 segment.
_ROTATED = (r'\x12\x01\x03\x00\x01\x00\x00\x00[\x02-\x08]\x00'
            r'|\x01\x12\x00\x03\x00\x00\x00\x01\x00[\x02-\x08]')
_HEADER_BYTES = 65536  # the APP segments an EXIF orientation may sit in


def plain_jpeg_short_side(payload, max_pixels):
  """images.inspect in TensorFlow ops, for encoded images that stream (TFDS): the short side
  of a plain JPEG (magic bytes, end marker before any zero padding, no EXIF rotation, 1 or 3
  components, at most ``max_pixels`` pixels), else 0: every other image goes to Pillow, which
  skips and counts the bad ones."""
  size = tf.strings.length(payload)
  tail = tf.concat([tf.zeros([2], tf.uint8), tf.io.decode_raw(
      tf.strings.substr(payload, tf.maximum(size - 64, 0), 64), tf.uint8)], 0)
  last = tf.reduce_max(tf.concat([tf.where(tail != 0)[:, 0], [1]], 0))  # last non-zero byte
  ends_well = tf.reduce_all(tail[last - 1:last + 1] == tf.constant([0xFF, 0xD9], tf.uint8))
  head = tf.strings.substr(payload, 0, _HEADER_BYTES)
  rotated = tf.strings.length(tf.strings.regex_replace(head, _ROTATED, '', replace_global=False)
                              ) < tf.strings.length(head)

  def short_side():
    height, width, components = tf.unstack(tf.io.extract_jpeg_shape(payload, tf.int64))
    fits = (height * width <= max_pixels) & ((components == 1) | (components == 3))
    return tf.cast(tf.where(fits, tf.minimum(height, width), 0), tf.int32)

  return tf.cond(tf.io.is_jpeg(payload) & ends_well & ~rotated, short_side,
                 lambda: tf.constant(0))


class _Decoder:
  """Decoding for one stream: plain JPEGs by TensorFlow's parallel decoder, everything else
  by the Pillow decoder (colorjax.data.images) through tf.numpy_function. Every image's header
  is inspected first, so that bad files are skipped and counted in ``skip_log``: files once,
  up front, in ``routes``; TFDS images as they stream, in TensorFlow ops (no Python for a
  plain JPEG).
  """

  def __init__(self, source, split, data_config, skip_log):
    self.source, self.data_config, self.skip_log = source, data_config, skip_log
    self.by_path = isinstance(source, FileSource)
    self.region = source.region(split)
    self.whole = self.region == (0.0, 1.0)
    # Strips of an image and the grayscale check need the pixels in Python anyway.
    self.native_allowed = self.whole and not data_config.drop_grayscale

  def _skip(self, payload, error):
    key = payload if len(payload) < 4096 else hashlib.sha1(payload).digest()
    self.skip_log.record(key, error.reason, str(error))

  def _route(self, plain_short):
    return NATIVE if plain_short and self.native_allowed else PILLOW

  def routes(self, paths):
    """Inspects every file once (in parallel): (paths kept, their routes, their short sides);
    the others are counted as skipped. One sentence when none is left."""
    def inspect(path):
      try:
        return images.inspect_path(path, self.data_config.max_pixels)
      except images.ImageError as e:
        self._skip(path.encode(), e)
        return None
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
      shorts = list(pool.map(inspect, paths))
    kept = [(p, self._route(short), short) for p, short in zip(paths, shorts) if short is not None]
    if not kept:
      raise self.skip_log.all_dropped_error()
    return tuple(map(list, zip(*kept)))

  def pillow(self, payload, min_short_side):
    """Pillow's decode of the split's region -> (uint8 RGB, ok)."""
    x0, x1 = self.region
    try:
      rgb = images.decode(self.source.read(payload),
                          min_short_side=int(min_short_side) if self.whole else None,
                          max_pixels=self.data_config.max_pixels)
      if not self.whole:
        width = rgb.shape[1]
        rgb = rgb[:, round(x0 * width):max(round(x1 * width), round(x0 * width) + 1)]
      if self.data_config.drop_grayscale:
        chroma = images.mean_chroma(rgb)
        if chroma < self.data_config.grayscale_chroma:
          raise images.ImageError('grayscale', f'mean chroma {chroma:.2f}')
    except images.ImageError as e:
      self._skip(payload, e)
      return np.zeros((1, 1, 3), np.uint8), False
    return rgb, True

  def raise_if_all_dropped(self):
    if self.skip_log.all_dropped():
      raise self.skip_log.all_dropped_error()
    return False

  def __call__(self, element, min_short_side):
    """Graph side: ({'payload', 'route', 'short'}, short side needed) -> (uint8 RGB, ok)."""
    payload = element['payload']
    if self.by_path:
      route, short = element['route'], element['short']
    else:
      short = plain_jpeg_short_side(payload, self.data_config.max_pixels)
      route = PILLOW if not self.native_allowed else tf.where(short > 0, NATIVE, PILLOW)
    ratio = _tf_dct_ratio(short, min_short_side)

    def native():
      data = tf.io.read_file(payload) if self.by_path else payload
      ratios = (1, 2, 4, 8)
      rgb = tf.switch_case(
          tf.argmax(tf.cast(tf.equal(ratio, ratios), tf.int32), output_type=tf.int32),
          [lambda r=r: tf.io.decode_jpeg(data, channels=3, ratio=r) for r in ratios])
      return rgb, tf.constant(True)

    def pillow():
      return tuple(tf.numpy_function(self.pillow, [payload, min_short_side],
                                     [tf.uint8, tf.bool]))

    rgb, ok = tf.switch_case(route, [native, pillow])
    return tf.ensure_shape(rgb, [None, None, 3]), tf.ensure_shape(ok, [])

  def keep(self, element):
    """Filter predicate; on a dropped image, also checks whether every image was dropped
    (after ignore_errors, so that this error is not swallowed)."""
    return tf.cond(element['ok'], lambda: tf.constant(True),
                   lambda: tf.numpy_function(self.raise_if_all_dropped, [], tf.bool))

  def payloads(self, split, shard, half, seed):
    """The source's images for this stream as {'payload', 'route', 'short'} elements; files
    are inspected here, once."""
    if not self.by_path:
      return self.source.payloads(split, shard, half=half, seed=seed).map(
          lambda p: {'payload': p, 'route': -1, 'short': 0})
    paths, routes, shorts = self.routes(self.source.paths(split, shard, half))
    return tf.data.Dataset.from_tensor_slices(
        {'payload': tf.constant(paths), 'route': tf.constant(routes, tf.int32),
         'short': tf.constant(shorts, tf.int32)})


def square_crop(rgb, image_size, scale, position, flip=False):
  """An image_size² crop of ``rgb`` resized so that its short side is image_size × scale.

  ``position`` in [0, 1]² places the crop window (0.5, 0.5: centred); ``flip`` mirrors it
  left-right by sampling the window from right to left, at no extra cost. Only the window is
  resampled (bilinear), never the whole image; decoding already brought the image to within
  2× of the size needed, so bilinear sampling does not alias.
  """
  shape = tf.cast(tf.shape(rgb)[:2], tf.float32)
  window = image_size * tf.reduce_min(shape) / (image_size * scale)  # source pixels
  start = position * tf.maximum(shape - window, 0.0)
  step = window / image_size
  first = start + 0.5 * step - 0.5  # centre of the first output pixel, in source pixels
  last = first + (image_size - 1) * step
  denominator = tf.maximum(shape - 1.0, 1.0)
  first, last = first / denominator, last / denominator
  x1, x2 = tf.cond(tf.convert_to_tensor(flip), lambda: (last[1], first[1]),
                   lambda: (first[1], last[1]))
  box = tf.stack([first[0], x1, last[0], x2])
  crop = tf.image.crop_and_resize(rgb[None], box[None], [0],
                                  [image_size, image_size])[0]
  return tf.cast(tf.round(tf.clip_by_value(crop, 0.0, 255.0)), tf.uint8)


def _images(payloads, decoder, image_size, seed, train, data_config, stop):
  """(index, payload) -> {'index', 'rgb': uint8 image_size²}; undecodable images dropped.

  A plain JPEG whose data TensorFlow's decoder rejects although its header and end marker are
  sound is dropped by tf.data's ``ignore_errors`` (TensorFlow logs it; it is not counted).

  Training draws each element's scale, crop position and flip from stateless RNG keyed by
  (seed, index); evaluation takes the centred crop at scale 1.
  """
  lo, hi = data_config.scale_range if train else (1.0, 1.0)

  def decode_and_crop(index, payload):
    if train:
      u = tf.random.stateless_uniform([4], tf.stack([tf.cast(seed, tf.int64), index]))
      scale, position, flip = lo + (hi - lo) * u[0], u[1:3], u[3] < 0.5
    else:
      scale, position, flip = tf.constant(1.0), tf.constant([0.5, 0.5]), tf.constant(False)
    needed = tf.cast(tf.math.ceil(scale * image_size), tf.int32)
    rgb, ok = decoder(payload, needed)
    rgb = square_crop(rgb, image_size, scale, position, flip & data_config.flip)
    return {'index': index, 'rgb': rgb, 'ok': ok}

  return (payloads.take_while(lambda index, payload: tf.logical_not(stop))
          .map(decode_and_crop, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
          .ignore_errors(log_warning=True).filter(decoder.keep))


def to_lab(rgb):
  """uint8 RGB -> float32 Lab inside tf.data, with colorjax.core.color's formulas."""
  tnp = tf.experimental.numpy
  return color.rgb_to_lab(tf.cast(rgb, tf.float32) / 255.0, xp=tnp)


def to_gray_rgb(rgb):
  """uint8 RGB -> uint8 RGB with R = G = B = the gray of the same L*."""
  tnp = tf.experimental.numpy
  gray = color.rgb_to_gray(tf.cast(rgb, tf.float32) / 255.0, xp=tnp)
  return tf.repeat(tf.cast(tf.round(gray * 255.0), tf.uint8), 3, axis=-1)


def _output(rgb, data_config):
  """Pixels as they leave the pipeline (applied to whole batches): uint8 RGB or float32 Lab."""
  return to_lab(rgb) if data_config.color_space == 'lab' else rgb


def _pixel_key(data_config):
  return 'lab' if data_config.color_space == 'lab' else 'rgb'


def options(ds, threads=0):
  """Deterministic order, one thread per op, and ``threads`` worker threads in all (0:
  tf.data's default, one per host core)."""
  opts = tf.data.Options()
  opts.deterministic = True
  opts.threading.max_intra_op_parallelism = 1
  if threads:
    opts.threading.private_threadpool_size = threads
  return ds.with_options(opts)


def per_process_batch(config, shard):
  if config.batch_size % shard.count:
    raise DataError(f'batch_size={config.batch_size} must be divisible by the number of '
                    f'processes ({shard.count}).')
  return config.batch_size // shard.count


def _train_stream(config, source, shard, name, half, seed, start, gray, stop):
  """One endless, shuffled, augmented, batched stream -> ({name: pixels, 'index_'+name}, log)."""
  data = config.data
  # A file list is shuffled whole, alike in every process, and process p keeps the elements at
  # positions p, p + N, ... (N processes): a global batch holds the same images whatever the
  # process count. TFDS: each process reads its own split, through a bounded shuffle buffer.
  files = isinstance(source, FileSource)
  read_by = Shard() if files else shard
  total = source.num_examples('train', read_by, half)
  skip_log = SkipLog(source.description + ('' if half is None else f' (half {"AB"[half]})'),
                     total)
  decoder = _Decoder(source, 'train', data, skip_log)
  payloads = decoder.payloads('train', read_by, half, seed)
  payloads = (payloads.shuffle(total if files else data.shuffle_buffer, seed=seed,
                               reshuffle_each_iteration=True).repeat().enumerate().skip(start))
  if files and shard.count > 1:
    payloads = payloads.filter(lambda index, _: index % shard.count == shard.index)
  ds = _images(payloads, decoder, config.image_size, seed, True, data, stop)
  ds = ds.batch(per_process_batch(config, shard), drop_remainder=True)

  def finish(batch):
    rgb = to_gray_rgb(batch['rgb']) if gray else batch['rgb']
    return {name: _output(rgb, data), f'index_{name}': batch['index']}

  return ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True), skip_log


def _pipeline_error(skip_logs, error):
  """The one sentence for a failed pipeline: every image skipped, or TensorFlow's message."""
  for log in skip_logs:
    if log.all_dropped():
      return log.all_dropped_error()
  return DataError(f'The input pipeline failed: {error.message}')


_OPEN_ITERATORS = weakref.WeakSet()


class _NumpyIterator:
  """A dataset's numpy iterator that can be closed without hanging.

  Destroying a tf.data iterator waits for its in-flight tf.numpy_function calls, which wait for
  the GIL that the destroying thread holds: a deadlock. So ``close`` first sets ``stop`` (the
  stream's take_while stops issuing work), then drains what is in flight, and only then lets
  the iterator go. Open iterators are closed at exit too.
  """

  def __init__(self, dataset, stop):
    self._iterator = iter(dataset.as_numpy_iterator())
    self._stop = stop
    _OPEN_ITERATORS.add(self)

  def __iter__(self):
    return self

  def __next__(self):
    if self._iterator is None:
      raise StopIteration
    return next(self._iterator)

  def close(self):
    if self._iterator is None:
      return
    self._stop.assign(True)
    try:
      for _ in self._iterator:
        pass
    except tf.errors.OpError:
      pass
    self._iterator = None


@atexit.register
def _close_open_iterators():
  for iterator in list(_OPEN_ITERATORS):
    iterator.close()


class Batches:
  """An endless iterator of training batches (dicts of numpy arrays) that knows its position.

  ``state`` (a dict of stream positions) given back to ``train_batches`` continues the same
  stream exactly; ``skipped()`` summarises the images dropped so far.
  """

  def __init__(self, datasets, stop, skip_logs, state):
    self._iterators = [_NumpyIterator(ds.prefetch(tf.data.AUTOTUNE), stop) for ds in datasets]
    self.skip_logs = skip_logs
    self._state = dict(state)

  @property
  def state(self):
    """A copy of the stream positions (callers may keep it, e.g. an asynchronous save)."""
    return dict(self._state)

  def __iter__(self):
    return self

  def __next__(self):
    batch = {}
    try:
      for iterator in self._iterators:
        batch.update(next(iterator))
    except tf.errors.OpError as e:
      raise _pipeline_error(self.skip_logs, e) from None
    for name in self._state:
      self._state[name] = int(batch.pop(f'index_{name}')[-1]) + 1
    return batch

  def close(self):
    """Stops the pipeline (also done at exit)."""
    for iterator in self._iterators:
      iterator.close()

  def skipped_any(self):
    return any(log.counts() for log in self.skip_logs)

  def skipped(self):
    return '; '.join(log.summary() for log in self.skip_logs)


def train_batches(config, shard=Shard(), state=None, source=None):
  """Training batches for this process: ``{"rgb"|"lab": [B, H, W, 3]}`` for paired tasks,
  ``{"a": …, "b": …}`` when ``config.data.pairing == 'unpaired'``; B = batch_size / processes.

  ``state`` is a ``Batches.state`` saved earlier: the stream continues from there. ``source``:
  ``config.data``'s source when already open.
  """
  source = source or open_source(config.data)
  pixel_key = _pixel_key(config.data)
  if config.data.pairing == 'unpaired':
    names, halves, grays = ('a', 'b'), (0, 1), (True, False)
  else:
    names, halves, grays = (pixel_key,), (None,), (False,)
  state = state or {name: 0 for name in names}
  stop = tf.Variable(False, trainable=False)
  streams, logs = [], []
  for offset, (name, half, gray) in enumerate(zip(names, halves, grays)):
    ds, log = _train_stream(config, source, shard, name, half, config.seed + offset, state[name],
                            gray, stop)
    streams.append(options(ds, config.data.threads))
    logs.append(log)
  return Batches(streams, stop, logs, state)


def num_eval_batches(config, source, shard):
  """Batches every process yields in one eval pass (the same on all processes)."""
  per_process = per_process_batch(config, shard)
  total = source.num_examples('eval', Shard())
  if total is None:
    return None
  return math.ceil(math.ceil(total / shard.count) / per_process)


def eval_batches(config, shard=Shard(), skip_logs=None):
  """One pass over the held-out images, centre-cropped, in a fixed order.

  Yields ``{"rgb"|"lab": [B, H, W, 3], "mask": bool[B]}``; the last batches are padded (mask
  False) so that every process yields the same number of full batches. The pass's SkipLog is
  appended to ``skip_logs`` when given.
  """
  data = config.data
  source = open_source(data)
  skip_log = SkipLog(source.description + ' (eval)', source.num_examples('eval', shard))
  if skip_logs is not None:
    skip_logs.append(skip_log)
  decoder = _Decoder(source, 'eval', data, skip_log)
  payloads = decoder.payloads('eval', shard, None, config.seed).enumerate()
  stop = tf.Variable(False, trainable=False)
  ds = _images(payloads, decoder, config.image_size, config.seed, False, data, stop)
  yield from padded_batches(
      ds.map(lambda element: element['rgb']), per_process_batch(config, shard),
      num_eval_batches(config, source, shard), stop, skip_log, data.color_space == 'lab',
      data.threads)


def padded_batches(images, batch_size, expected, stop, skip_log, lab=False, threads=0):
  """Batches of ``images`` (a dataset of uint8 [S, S, 3] whose pipeline stops issuing work once
  ``stop`` is set) as ``{"rgb": uint8 | "lab": float32 [B, S, S, 3], "mask": bool[B]}``, the
  last ones padded so that ``expected`` batches come (None: as many as there are); ``threads``
  as in ``options``."""
  ds = images.batch(batch_size)
  if lab:
    ds = ds.map(to_lab)
  ds = options(ds.prefetch(tf.data.AUTOTUNE), threads)
  key = 'lab' if lab else 'rgb'
  count = 0
  iterator = _NumpyIterator(ds, stop)
  try:
    for pixels in iterator:
      yield _padded(key, pixels, batch_size)
      count += 1
  except tf.errors.OpError as e:
    raise _pipeline_error([skip_log], e) from None
  finally:
    iterator.close()
  if skip_log.counts():
    logging.warning('%s.', skip_log.summary())
  shape = tuple(images.element_spec.shape)
  while expected is not None and count < expected:
    yield _padded(key, np.zeros((0,) + shape, np.float32 if key == 'lab' else np.uint8),
                  batch_size)
    count += 1


def _padded(key, pixels, batch_size):
  n = len(pixels)
  pad = np.zeros((batch_size - n,) + pixels.shape[1:], pixels.dtype)
  return {key: np.concatenate([pixels, pad]), 'mask': np.arange(batch_size) < n}
