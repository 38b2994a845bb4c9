"""``colorjax prepare tfds:NAME``: builds a TensorFlow Datasets set where training finds it.

  colorjax prepare tfds:cifar10                               # downloads, into ~/tensorflow_datasets
  colorjax prepare tfds:imagenet2012 --manual_dir=~/imagenet  # from ILSVRC2012_img_{train,val}.tar
  colorjax prepare tfds:places365_small --data_dir=/data/tfds

Runs the set's TFDS builder (its own progress bars) into ``--data_dir`` (default: TFDS's own
folder, $TFDS_DATA_DIR or ~/tensorflow_datasets, where ``data.data_dir=''`` looks), reading a
manual-download set's files from ``--manual_dir``, then prints the config flags that train on it.
"""
import os

from absl import flags

from colorjax.core import validation
from colorjax.data import sources

FLAGS = flags.FlagValues()  # this command's own flags (colorjax SUB --help lists them)

_MANUAL_DIR = flags.DEFINE_string(
    'manual_dir', '', 'Folder of the files a manual-download set is built from (default: '
    "TFDS's DATA_DIR/downloads/manual).", flag_values=FLAGS)
_DATA_DIR = flags.DEFINE_string('data_dir', '', "Where to build it (default: TFDS's own folder, "
                                '$TFDS_DATA_DIR or ~/tensorflow_datasets).', flag_values=FLAGS)


def main(argv):
  kind, _, name = (argv[1] if len(argv) == 2 else '').partition(':')
  if kind != 'tfds' or not name:
    raise validation.UserError('give one data set as tfds:NAME (e.g. colorjax prepare '
                               'tfds:imagenet2012 --manual_dir=DIR).')
  expand = lambda path: os.path.abspath(os.path.expanduser(path)) if path else ''
  data_dir = expand(_DATA_DIR.value)
  builder = sources.prepare_tfds(name, data_dir, expand(_MANUAL_DIR.value))
  splits = ', '.join(f'{split} {info.num_examples:,}' for split, info in
                     sorted(builder.info.splits.items()))
  train_on = f'--config.data.source=tfds:{name}'
  if data_dir:
    train_on += f' --config.data.data_dir={data_dir}'
  print(f"Prepared TFDS data set '{name}' in {builder.data_dir} ({splits} images). Train on it "
        f'with:\n  {train_on}')
