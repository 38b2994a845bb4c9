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
import tempfile

from absl import flags
from ml_collections import config_flags

from colorjax.data.throughput import BenchJpegs, make_jpegs, measure, table
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
