"""Input-pipeline throughput: the training pipeline's images/sec next to TensorFlow's own
decode + crop + batch of the same encoded images, from a folder or a TFDS set, per tf.data
thread count (``colorjax bench-data`` prints it)."""
import os
import statistics
import time

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from colorjax.data import pipeline, sources


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


class BenchJpegs(tfds.core.GeneratorBasedBuilder):
  """A real TFDS set (``tfds:bench_jpegs``) of a folder's JPEGs, their bytes stored as they are,
  so that both sources hold the same encoded images."""
  VERSION = tfds.core.Version('1.0.0')

  def __init__(self, *, folder=None, **kwargs):
    self.folder = folder
    super().__init__(**kwargs)

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
        {'image': tfds.features.Image(shape=(None, None, 3), encoding_format='jpeg')}))

  def _split_generators(self, dl_manager):
    return {'train': self._generate_examples()}

  def _generate_examples(self):
    for path in sources.list_images(self.folder):
      yield os.path.relpath(path, self.folder), {'image': path}


def _rate(iterator, images_per_item, images):
  """Images/sec of pulling from ``iterator`` after two warm-up items."""
  for _ in range(2):
    next(iterator)
  items = max(1, images // images_per_item)
  start = time.perf_counter()
  for _ in range(items):
    next(iterator)
  return items * images_per_item / (time.perf_counter() - start)


def encoded_images(data_config):
  """The source's training images, still encoded, as a tf.data.Dataset of bytes."""
  source = sources.open_source(data_config)
  if isinstance(source, sources.FileSource):
    return tf.data.Dataset.from_tensor_slices(source.paths('train')).map(tf.io.read_file)
  return source.payloads('train')


def reference_rate(data_config, size, batch_size, threads, images):
  """TensorFlow's decode of the source's encoded images, then the pipeline's crop (centred,
  scale 1) and batching: nothing else."""
  crop = lambda rgb: pipeline.square_crop(rgb, size, tf.constant(1.0), tf.constant([0.5, 0.5]))
  ds = (encoded_images(data_config).repeat()
        .map(lambda data: crop(tf.io.decode_jpeg(data, channels=3)),
             num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size).prefetch(tf.data.AUTOTUNE))
  return _rate(iter(pipeline.options(ds, threads).as_numpy_iterator()), batch_size, images)


def pipeline_rate(config, size, threads, images):
  """The training pipeline: images/sec of finished batches."""
  config = config.copy_and_resolve_references()
  config.image_size, config.data.threads = size, threads
  batches = pipeline.train_batches(config)
  try:
    return _rate(batches, config.batch_size, images)
  finally:
    batches.close()


def measure(config, sizes, threads, images, repeats):
  """Rows of {'source', 'size', 'threads', 'reference', 'pipeline'} (images/sec, medians)."""
  median = lambda f: statistics.median(f() for _ in range(repeats))
  rows = []
  for size in sizes:
    for n in threads:
      rows.append({
          'source': config.data.source, 'size': size, 'threads': n,
          'reference': median(lambda: reference_rate(config.data, size, config.batch_size, n,
                                                     images)),
          'pipeline': median(lambda: pipeline_rate(config, size, n, images))})
  return rows


def table(rows):
  """The rows as text: rates, per-thread rates, pipeline/reference, and scaling with threads."""
  one = {(r['source'], r['size']): r['pipeline'] for r in rows if r['threads'] == 1}
  lines = [f'{"source":<26} {"crop":>5} {"threads":>7} {"reference":>10} {"pipeline":>9} '
           f'{"per core":>9} {"vs ref":>7} {"scaling":>8}']
  for r in rows:
    base = one.get((r['source'], r['size']))
    scaling = f'{r["pipeline"] / base:.2f}x' if base else '-'
    source = 'folder' if r['source'].startswith('folder:') else r['source']
    lines.append(f'{source:<26} {r["size"]:>4}² {r["threads"]:>7} '
                 f'{r["reference"]:>10.0f} {r["pipeline"]:>9.0f} '
                 f'{r["pipeline"] / r["threads"]:>9.0f} {r["pipeline"] / r["reference"]:>7.2f} '
                 f'{scaling:>8}')
  return '\n'.join(lines)
