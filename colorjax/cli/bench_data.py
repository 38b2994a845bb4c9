"""``colorjax bench-data``: images/sec of training batches, per core, next to TensorFlow's own.

  colorjax bench-data                          # JPEGs made from the samples, as a folder and as
                                               # a TFDS set built from the same files
  colorjax bench-data --folder=~/photos        # your own folder of JPEGs (and a TFDS set of them)
  colorjax bench-data --tfds=imagenet2012      # a prepared TFDS set (data.data_dir: its folder)

For each source, crop size and thread count, the training pipeline (inspect, decode, resize,
crop, flip, shuffle, batch) is timed next to a reference: TensorFlow's own ``decode_jpeg`` of
the same encoded images followed by the same crop and batching, with none of the pipeline's
inspection, skipping, shuffling or per-image randomness. Threads are tf.data's worker threads
(``data.threads``); images/sec per thread is the rate one host core gives. Each figure is the
median of ``--repeats`` timed runs.
"""
import json
import os
import statistics
import tempfile
import time

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import flags
from ml_collections import config_flags
from PIL import Image

from colorjax.data import pipeline, sources
from configs import default

FLAGS = flags.FlagValues()  # this command's own flags (colorjax SUB --help lists them)

_CONFIG = config_flags.DEFINE_config_file(
    'config', default.__file__, 'Config whose data options are measured.', flag_values=FLAGS)
_FOLDER = flags.DEFINE_string('folder', None, 'Folder of JPEGs (default: made from the samples).',
                              flag_values=FLAGS)
_TFDS = flags.DEFINE_string('tfds', None, 'A prepared TFDS set to read (default: one built from '
                            'the folder\'s JPEGs); its folder is data.data_dir.', flag_values=FLAGS)
_NUM_FILES = flags.DEFINE_integer('num_files', 256, 'JPEGs to make when --folder is not given.',
                                  flag_values=FLAGS)
_SIZES = flags.DEFINE_list('sizes', ['128', '256'], 'Training crop sizes to measure.',
                           flag_values=FLAGS)
_THREADS = flags.DEFINE_list('threads', ['1', '2'], 'tf.data worker thread counts to measure.',
                             flag_values=FLAGS)
_BATCH = flags.DEFINE_integer('batch_size', 32, 'Batch size.', flag_values=FLAGS)
_IMAGES = flags.DEFINE_integer('images', 1024, 'Images timed per run (after a warm-up).',
                               flag_values=FLAGS)
_REPEATS = flags.DEFINE_integer('repeats', 3, 'Timed runs per figure; the median is reported.',
                                flag_values=FLAGS)


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


def main(argv):
  del argv
  config = _CONFIG.value.copy_and_resolve_references()
  config.batch_size = _BATCH.value
  config.data.eval_fraction = 0.0
  sizes, threads = list(map(int, _SIZES.value)), list(map(int, _THREADS.value))
  with tempfile.TemporaryDirectory() as tmp:
    folder = _FOLDER.value
    if folder is None and _TFDS.value is None:
      folder = os.path.join(tmp, 'jpegs')
      os.makedirs(folder)
      make_jpegs(folder, _NUM_FILES.value)
    configs = []
    if folder is not None:
      folder = os.path.abspath(os.path.expanduser(folder))
      as_folder = config.copy_and_resolve_references()
      as_folder.data.source = f'folder:{folder}'
      configs.append(as_folder)
    as_tfds = config.copy_and_resolve_references()
    if _TFDS.value is None:
      as_tfds.data.data_dir = os.path.join(tmp, 'tfds')
      BenchJpegs(folder=folder, data_dir=as_tfds.data.data_dir).download_and_prepare()
      as_tfds.data.source = 'tfds:bench_jpegs'
    else:
      as_tfds.data.source = f'tfds:{_TFDS.value}'
    configs.append(as_tfds)
    rows = [row for c in configs
            for row in measure(c, sizes, threads, _IMAGES.value, _REPEATS.value)]
  print(f'{os.cpu_count()} CPU cores, batch {_BATCH.value}, {_IMAGES.value} images per run, '
        f'median of {_REPEATS.value} runs; reference: TensorFlow decode_jpeg + crop + batch')
  print(table(rows))
  print(json.dumps({'batch_size': _BATCH.value, 'rows': [
      {k: round(v, 1) if isinstance(v, float) else v for k, v in r.items()} for r in rows]}))
