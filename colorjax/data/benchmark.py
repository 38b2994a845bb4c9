"""``colorjax bench-data``: images/sec of training batches next to the raw JPEG decode rate.

  colorjax bench-data                       # JPEGs made from the bundled sample photos
  colorjax bench-data --folder=~/photos     # your own folder of JPEGs

The raw rate is TensorFlow's own parallel ``decode_jpeg`` over the same files on the same
machine: the pipeline (decode, validate, resize, crop, flip, batch, optional Lab) should reach
at least half of it. Each figure is the median of ``--repeats`` timed runs.
"""
import json
import os
import statistics
import tempfile
import time

import numpy as np
import tensorflow as tf
from absl import flags
from ml_collections import config_flags
from PIL import Image

from colorjax.data import pipeline, sources

_CONFIG = config_flags.DEFINE_config_file(
    'config', 'configs/default.py', 'Config whose data options are measured.')
_FOLDER = flags.DEFINE_string('folder', None, 'Folder of JPEGs (default: made from the samples).')
_NUM_FILES = flags.DEFINE_integer('num_files', 256, 'JPEGs to make when --folder is not given.')
_SIZES = flags.DEFINE_list('sizes', ['128', '256'], 'Training crop sizes to measure.')
_BATCH = flags.DEFINE_integer('batch_size', 32, 'Batch size.')
_IMAGES = flags.DEFINE_integer('images', 1024, 'Images timed per run (after a warm-up).')
_REPEATS = flags.DEFINE_integer('repeats', 3, 'Timed runs per figure; the median is reported.')


def make_jpegs(folder, count, seed=0, size=(500, 375)):
  """``count`` JPEGs of ``size`` (ImageNet's typical shape) cut from the sample photos."""
  rng = np.random.default_rng(seed)
  photos = [Image.open(os.path.join(sources.samples_dir(), name)).convert('RGB')
            for name in sources.SAMPLE_PHOTOS]
  for i in range(count):
    photo = photos[i % len(photos)]
    scale = max(size[0] / photo.width, size[1] / photo.height) * rng.uniform(1.0, 1.5)
    photo = photo.resize((round(photo.width * scale), round(photo.height * scale)))
    x = rng.integers(0, photo.width - size[0] + 1)
    y = rng.integers(0, photo.height - size[1] + 1)
    photo.crop((x, y, x + size[0], y + size[1])).save(
        os.path.join(folder, f'{i:05d}.jpg'), quality=90)


def _rate(iterator, images_per_item, images):
  """Images/sec of pulling from ``iterator`` after two warm-up items."""
  for _ in range(2):
    next(iterator)
  items = max(1, images // images_per_item)
  start = time.perf_counter()
  for _ in range(items):
    next(iterator)
  return items * images_per_item / (time.perf_counter() - start)


def raw_decode_rate(files, images):
  """TensorFlow's parallel JPEG decode of the files, nothing else."""
  ds = (tf.data.Dataset.from_tensor_slices(files).repeat()
        .map(lambda p: tf.io.decode_jpeg(tf.io.read_file(p), channels=3),
             num_parallel_calls=tf.data.AUTOTUNE)
        .map(tf.shape).prefetch(tf.data.AUTOTUNE))
  return _rate(iter(ds.as_numpy_iterator()), 1, images)


def tf_crop_rate(files, size, batch_size, images):
  """A reference ceiling: TensorFlow's own decode, then the same crop and batching, with none of
  the pipeline's validation, skipping, shuffling or per-element randomness."""
  crop = lambda rgb: pipeline.square_crop(rgb, size, tf.constant(1.0), tf.constant([0.5, 0.5]))
  ds = (tf.data.Dataset.from_tensor_slices(files).repeat()
        .map(lambda p: crop(tf.io.decode_jpeg(tf.io.read_file(p), channels=3)),
             num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size).prefetch(tf.data.AUTOTUNE))
  return _rate(iter(ds.as_numpy_iterator()), batch_size, images)


def pipeline_rate(config, folder, size, color_space, images):
  """The training pipeline over the folder: images/sec of finished batches."""
  config = config.copy_and_resolve_references()
  config.data.source = f'folder:{folder}'
  config.data.eval_fraction = 0.0
  config.data.color_space = color_space
  config.image_size = size
  batches = pipeline.train_batches(config)
  try:
    return _rate(batches, config.batch_size, images)
  finally:
    batches.close()


def main(argv):
  del argv
  config = _CONFIG.value.copy_and_resolve_references()
  config.batch_size = _BATCH.value
  with tempfile.TemporaryDirectory() as tmp:
    folder = _FOLDER.value
    if folder is None:
      folder = tmp
      make_jpegs(folder, _NUM_FILES.value)
    files = sources.list_images(os.path.expanduser(folder))
    median = lambda f: statistics.median(f() for _ in range(_REPEATS.value))
    raw = median(lambda: raw_decode_rate(files, _IMAGES.value))
    rows = [('raw tf decode_jpeg', '-', raw)]
    for size in map(int, _SIZES.value):
      rows.append(('tf decode+crop+batch', f'{size}²',
                   median(lambda: tf_crop_rate(files, size, _BATCH.value, _IMAGES.value))))
      for space in ('rgb', 'lab'):
        rate = median(lambda: pipeline_rate(config, folder, size, space, _IMAGES.value))
        rows.append((f'pipeline {space}', f'{size}²', rate))
  print(f'{len(files)} JPEGs, {os.cpu_count()} CPU cores, batch {_BATCH.value}, '
        f'median of {_REPEATS.value} runs')
  print(f'{"what":<20} {"crop":>6} {"images/sec":>11} {"vs raw":>7}')
  for what, crop, rate in rows:
    print(f'{what:<20} {crop:>6} {rate:>11.0f} {rate / raw:>7.2f}')
  print(json.dumps({'files': len(files), 'batch_size': _BATCH.value,
                    'raw_decode_images_per_sec': round(raw, 1),
                    'images_per_sec': {f'{w.replace(" ", "_")}_{c[:-1]}': round(r, 1)
                                       for w, c, r in rows[1:]}}))
