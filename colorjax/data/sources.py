"""Where images come from, named by one string ``config.data.source``.

- ``samples``: colour photographs shipped inside scikit-image's wheel (no network needed);
- ``folder:PATH``: every image below PATH, with a deterministic held-out fraction for eval;
- ``tfds:NAME``: a prepared TensorFlow Datasets data set (``data.data_dir``, splits).

Per split and process, a FileSource gives its file paths (``paths``) and a TfdsSource a
tf.data.Dataset of encoded images (``payloads``); ``read(payload) -> bytes`` turns either into
encoded bytes. Inspection and decoding happen in the pipeline.
"""
import hashlib
import os

from colorjax.core.parallel import Shard
from colorjax.core.validation import UserError
from colorjax.data import images


class DataError(UserError):
  """A data source that cannot be used, said in one sentence."""


SAMPLE_PHOTOS = ('astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg',
                 'motorcycle_left.png', 'hubble_deep_field.jpg')
SOURCE_FORMS = "'samples', 'folder:PATH' or 'tfds:NAME'"


def _held_out_key(relative_path):
  return hashlib.sha1(relative_path.encode()).hexdigest()


def split_files(paths, root, eval_fraction):
  """Deterministic (train, eval) split of a file list by a hash of each relative path.

  The same files are held out wherever the folder lives; at least one file is held out when
  ``eval_fraction`` > 0 and there are two or more files; 1 holds out every file (a test set).
  """
  if eval_fraction >= 1:
    return [], list(paths)
  ranked = sorted(paths, key=lambda p: _held_out_key(os.path.relpath(p, root)))
  n_eval = 0
  if eval_fraction > 0 and len(paths) >= 2:
    n_eval = min(len(paths) - 1, max(1, round(eval_fraction * len(paths))))
  held_out = set(ranked[:n_eval])
  return ([p for p in paths if p not in held_out], [p for p in paths if p in held_out])


def list_images(root, extensions=images.EXTENSIONS):
  """Every image file (or file with one of ``extensions``) below ``root``, recursively,
  sorted."""
  found = []
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames.sort()
    found.extend(os.path.join(dirpath, name) for name in sorted(filenames)
                 if name.lower().endswith(extensions))
  return found


class FileSource:
  """Images in files: a folder, or the bundled samples.

  A folder holds out whole files. The six sample photos are too few for that, so they hold out
  a strip instead: the right ``eval_fraction`` of every photo is for evaluation only, and
  training crops come from the rest (``region``).
  """

  def __init__(self, description, root, paths, eval_fraction, hold_out_strips=False):
    self.description = description
    self.root = root
    if hold_out_strips:
      self.train_files = self.eval_files = list(paths)
      edge = 1.0 - eval_fraction
      self.regions = {'train': (0.0, edge), 'eval': (edge, 1.0)}
    else:
      self.train_files, self.eval_files = split_files(paths, root, eval_fraction)
      self.regions = {'train': (0.0, 1.0), 'eval': (0.0, 1.0)}

  def files(self, split):
    return self.train_files if split == 'train' else self.eval_files

  def region(self, split):
    """(x0, x1): the horizontal span of each image that ``split`` may use, as fractions."""
    return self.regions[split]

  def _selected(self, split, shard, half):
    files = self.files(split)
    if half is not None:
      files = files[half::2]
    return files[shard.index::shard.count]

  def num_examples(self, split, shard=Shard(), half=None):
    return len(self._selected(split, shard, half))

  def paths(self, split, shard=Shard(), half=None):
    """File paths of ``split`` for this process (``half`` 0 or 1: disjoint halves)."""
    files = self._selected(split, shard, half)
    if not files:
      raise DataError(f'{self.description} has no {split} images for process {shard.index} of '
                      f'{shard.count}; add images or lower data.eval_fraction.')
    return files

  read = staticmethod(images.read_bytes)

  def check(self):
    """Nothing more to check: opening found the folder and its images."""


HELD_OUT_SPLITS = ('validation', 'test')   # data.eval_split='': the first a TFDS set has


def tfds_builder(name, data_dir=''):
  """TFDS's builder of ``name`` in ``data_dir`` ('': TFDS's own default, $TFDS_DATA_DIR, else
  ~/tensorflow_datasets); one sentence for a name TFDS does not know."""
  import tensorflow_datasets as tfds
  try:
    return tfds.builder(name, data_dir=data_dir or None)
  except tfds.core.registered.DatasetNotFoundError:
    raise DataError(f"'tfds:{name}' names no TFDS data set; see "
                    'https://www.tensorflow.org/datasets/catalog for the names.') from None


class TfdsSource:
  """A prepared TFDS data set; images stay encoded until the pipeline decodes them."""

  def __init__(self, name, data_dir, train_split, eval_split, image_key):
    self.description = f"TFDS data set '{name}'"
    self.name, self.train_split, self.eval_split, self.image_key = (
        name, train_split, eval_split, image_key)
    self.builder = tfds_builder(name, data_dir)

  def check(self):
    """One sentence now, before a run writes anything, when the training split cannot be read
    (not prepared, no such split)."""
    self.payloads('train')

  def _split(self, split):
    if split == 'train':
      return self.train_split
    return self.eval_split or self.held_out_split()

  def held_out_split(self):
    """The set's own held-out split: 'validation' (ImageNet, Places365), else 'test' (CIFAR);
    'validation' while TFDS knows none of its splits (not prepared yet)."""
    splits = set(self.builder.info.splits)
    for name in HELD_OUT_SPLITS:
      if name in splits or not splits:
        return name
    raise DataError(f"{self.description} has neither a {' nor a '.join(map(repr, HELD_OUT_SPLITS))}"
                    f" split (it has {', '.join(map(repr, sorted(splits)))}); set "
                    'data.eval_split to the one to evaluate on.')

  def num_examples(self, split, shard=Shard(), half=None):
    """Examples in this process's part, or None when TFDS does not know (mock data, halves)."""
    if half is not None:
      return None
    try:
      total = self.builder.info.splits[self._split(split)].num_examples
    except (KeyError, ValueError):
      return None
    return len(range(shard.index, total, shard.count))

  def payloads(self, split, shard=Shard(), half=None, seed=0):
    """Encoded image bytes of ``split`` for this process, files read in a seeded order."""
    import tensorflow_datasets as tfds
    name = self._split(split)
    if half is not None:
      name = tfds.even_splits(name, n=2)[half]
    if shard.count > 1:
      name = tfds.split_for_jax_process(name, process_index=shard.index,
                                        process_count=shard.count)
    try:
      ds = self.builder.as_dataset(
          split=name, shuffle_files=split == 'train',
          read_config=tfds.ReadConfig(shuffle_seed=seed),
          decoders={self.image_key: tfds.decode.SkipDecoding()})
    except (AssertionError, FileNotFoundError, tfds.core.registered.DatasetNotFoundError) as e:
      raise DataError(
          f"TFDS data set '{self.name}' is not prepared in {self.builder.data_dir_root}: prepare "
          f"it once with `tfds build {self.name}` (into TFDS's default folder, $TFDS_DATA_DIR or "
          '~/tensorflow_datasets; needs the network, and manual downloads for some data sets), '
          'or into --data_dir=DIR and set data.data_dir=DIR.') from e
    except ValueError as e:
      raise DataError(f"TFDS data set '{self.name}' has no split '{name}': {e}") from None
    key = self.image_key
    return ds.map(lambda example: example[key])

  @staticmethod
  def read(payload):
    return payload

  @staticmethod
  def region(split):
    return (0.0, 1.0)


# The files a manual-download TFDS set is built from, as its builder names them.
MANUAL_FILES = {'imagenet2012': ('ILSVRC2012_img_train.tar', 'ILSVRC2012_img_val.tar')}


def prepare_tfds(name, data_dir='', manual_dir=''):
  """Runs the TFDS builder of ``name`` into ``data_dir`` ('': TFDS's default folder), from the
  files in ``manual_dir`` ('': TFDS's DATA_DIR/downloads/manual) for a set one downloads
  oneself, and returns the builder; one sentence when the set or its files are missing."""
  import tensorflow_datasets as tfds
  builder = tfds_builder(name, data_dir)
  if builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
    folder = manual_dir or os.path.join(builder.data_dir_root, 'downloads', 'manual')
    missing = [f for f in MANUAL_FILES.get(name, ()) if not os.path.isfile(os.path.join(folder, f))]
    if missing or not os.path.isdir(folder):
      files = f"put {' and '.join(missing)} in {folder}" if missing else f'create {folder}'
      raise DataError(f"TFDS data set '{name}' is built from files you download yourself: "
                      f'{files} (or name their folder with --manual_dir=DIR). TFDS says: '
                      f"{' '.join(builder.MANUAL_DOWNLOAD_INSTRUCTIONS.split())}")
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir or None))
  return builder


def samples_dir():
  import skimage
  return os.path.join(os.path.dirname(skimage.__file__), 'data')


def open_source(data_config):
  """The source named by ``data_config.source``; one sentence when it cannot be used."""
  source = data_config.source
  if source == 'samples':
    root = samples_dir()
    return FileSource('the bundled sample photos', root,
                      [os.path.join(root, name) for name in SAMPLE_PHOTOS],
                      data_config.eval_fraction, hold_out_strips=True)
  kind, _, rest = source.partition(':')
  if kind == 'folder' and rest:
    root = os.path.abspath(os.path.expanduser(rest))
    if not os.path.isdir(root):
      raise DataError(f"data.source folder '{rest}' does not exist or is not a folder.")
    paths = list_images(root)
    if not paths:
      raise DataError(f"data.source folder '{rest}' holds no images (looked recursively for "
                      f"{', '.join(images.EXTENSIONS)}).")
    return FileSource(f"folder '{rest}'", root, paths, data_config.eval_fraction)
  if kind == 'tfds' and rest:
    return TfdsSource(rest, data_config.data_dir, data_config.train_split,
                      data_config.eval_split, data_config.image_key)
  raise DataError(f"data.source={source!r} is not a known source; use {SOURCE_FORMS}.")
