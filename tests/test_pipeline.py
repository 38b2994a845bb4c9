"""The tf.data pipeline on the bundled samples, folders the tests write, and mocked TFDS."""
import io
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image
from skimage import color as skcolor

from colorjax.core import validation
from colorjax.core.parallel import Shard
from colorjax.data import images, pipeline, sources
from colorjax.data.sources import DataError
from conftest import ROOT, colour_image, write_colour_images


def take(batches, n):
  out = [next(batches) for _ in range(n)]
  batches.close()
  return out


def test_samples_give_uint8_batches(config):
  batch = take(pipeline.train_batches(config), 1)[0]
  assert set(batch) == {'rgb'}
  assert batch['rgb'].shape == (4, 32, 32, 3) and batch['rgb'].dtype == np.uint8


def test_samples_hold_out_a_strip_of_every_photo(config):
  config.data.eval_fraction = 0.25
  source = sources.open_source(config.data)
  assert source.region('train') == (0.0, 0.75) and source.region('eval') == (0.75, 1.0)
  masks = [b['mask'] for b in pipeline.eval_batches(config)]
  assert sum(m.sum() for m in masks) == len(sources.SAMPLE_PHOTOS)


def test_same_seed_same_batches_other_seed_other_batches(config):
  config.data.scale_range = (1.0, 2.0)
  first = take(pipeline.train_batches(config), 3)
  again = take(pipeline.train_batches(config), 3)
  config.seed = 1
  other = take(pipeline.train_batches(config), 3)
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a['rgb'], b['rgb'])
  assert any((a['rgb'] != c['rgb']).any() for a, c in zip(first, other))


def test_a_stream_continues_exactly_from_its_state(config, tmp_path):
  write_colour_images(tmp_path, 6)
  (tmp_path / 'broken.png').write_bytes(b'not an image')
  config.data.source = f'folder:{tmp_path}'
  config.data.eval_fraction = 0.0
  straight = take(pipeline.train_batches(config), 5)  # crosses several epochs of 7 files
  batches = pipeline.train_batches(config)
  take_two = [next(batches) for _ in range(2)]
  state = dict(batches.state)
  batches.close()
  resumed = take(pipeline.train_batches(config, state=state), 3)
  for a, b in zip(straight, take_two + resumed):
    np.testing.assert_array_equal(a['rgb'], b['rgb'])


def test_crop_geometry_against_numpy():
  wide = colour_image(3, size=(32, 64))
  crop = lambda image, scale, position: pipeline.square_crop(
      tf.constant(image), 32, tf.constant(scale), tf.constant(position)).numpy()
  # Short side already 32: the centred crop is the middle 32 columns, pixel for pixel.
  np.testing.assert_array_equal(crop(wide, 1.0, [0.5, 0.5]), wide[:, 16:48])
  np.testing.assert_array_equal(crop(wide, 1.0, [0.0, 1.0]), wide[:, 32:])
  flipped = pipeline.square_crop(tf.constant(wide), 32, tf.constant(1.0),
                                 tf.constant([0.5, 0.0]), flip=True).numpy()
  np.testing.assert_array_equal(flipped, wide[:, 31::-1])
  # Halving: bilinear sampling at output pixel centres is the mean of each 2x2 block.
  big = colour_image(5, size=(64, 64)).astype(np.float64)
  blocks = big.reshape(32, 2, 32, 2, 3).mean(axis=(1, 3))
  assert np.abs(crop(big.astype(np.uint8), 1.0, [0.5, 0.5]) - blocks).max() <= 0.5 + 1e-9


def test_eval_pass_is_centre_crops_padded_with_a_mask(config, tmp_path):
  write_colour_images(tmp_path, 5)
  config.data.source = f'folder:{tmp_path}'
  config.data.eval_fraction = 0.4
  batches = list(pipeline.eval_batches(config))
  assert len(batches) == 1
  assert batches[0]['mask'].tolist() == [True, True, False, False]
  assert batches[0]['rgb'][2:].max() == 0


def test_bad_files_are_skipped_and_counted(config, tmp_path):
  write_colour_images(tmp_path, 4)
  (tmp_path / 'zero.jpg').write_bytes(b'')
  (tmp_path / 'text.jpg').write_text('hello')
  buffer = io.BytesIO()
  Image.fromarray(colour_image(9)).save(buffer, 'JPEG')
  (tmp_path / 'truncated.jpg').write_bytes(buffer.getvalue()[:200])
  Image.new('RGB', (1, 1), (200, 30, 30)).save(tmp_path / 'one_pixel.png')
  config.data.source = f'folder:{tmp_path}'
  config.data.eval_fraction = 0.0
  config.data.max_pixels = 10_000
  batches = pipeline.train_batches(config)
  for batch in take(batches, 4):
    assert batch['rgb'].shape == (4, 32, 32, 3)
  assert batches.skip_logs[0].counts() == {'empty': 1, 'undecodable': 2}
  assert '3 of 8 images skipped' in batches.skipped()


def encode(image, fmt, **kwargs):
  buffer = io.BytesIO()
  image.save(buffer, fmt, **kwargs)
  return buffer.getvalue()


def test_bad_tfds_images_are_skipped_and_counted(config, tmp_path):
  truncated = encode(Image.fromarray(colour_image(9)), 'JPEG')[:200]
  builder_with_splits('ColourAndBad', ['train'], images=4, encoded=[b'', b'hello', truncated])(
      data_dir=str(tmp_path)).download_and_prepare()
  config.data.source, config.data.data_dir = 'tfds:colour_and_bad', str(tmp_path)
  batches = pipeline.train_batches(config)
  for batch in take(batches, 4):
    assert batch['rgb'].shape == (4, 32, 32, 3)
  assert batches.skip_logs[0].counts() == {'empty': 1, 'undecodable': 2}
  assert '3 of 7 images skipped' in batches.skipped()


def test_streamed_images_are_inspected_in_tensorflow_as_pillow_does():
  """TFDS images: the graph-side header check gives images.inspect's short side (0 where
  inspect refuses the image or leaves it to Pillow)."""
  photo = Image.fromarray(colour_image(2, size=(400, 600)))
  jpeg = encode(photo, 'JPEG')
  rotated_big_endian = Image.Exif()
  rotated_big_endian[images.ORIENTATION] = 6
  upright = Image.Exif()
  upright[images.ORIENTATION] = 1
  rotated_little_endian = (b'Exif\0\0II*\0' + struct.pack('<IH', 8, 1)
                           + struct.pack('<HHII', images.ORIENTATION, 3, 1, 3) + b'\0' * 4)
  cases = {'plain': jpeg, 'gray': encode(photo.convert('L'), 'JPEG'),
           'zero padded': jpeg + b'\0' * 100, 'truncated': jpeg[:-300],
           'cmyk': encode(photo.convert('CMYK'), 'JPEG'), 'png': encode(photo, 'PNG'),
           'rotated (MM)': encode(photo, 'JPEG', exif=rotated_big_endian),
           'rotated (II)': encode(photo, 'JPEG', exif=rotated_little_endian),
           'upright': encode(photo, 'JPEG', exif=upright), 'empty': b'', 'text': b'hello'}
  for max_pixels in (10 ** 6, 1000):
    for name, data in cases.items():
      try:
        expected = images.inspect(io.BytesIO(data), max_pixels)
      except images.ImageError:
        expected = 0
      got = int(pipeline.plain_jpeg_short_side(tf.constant(data), max_pixels))
      assert got == expected, (name, max_pixels)
  assert int(pipeline.plain_jpeg_short_side(tf.constant(jpeg), 10 ** 6)) == 400


def test_a_fifo_among_the_files_is_skipped_not_waited_on(config, tmp_path):
  write_colour_images(tmp_path, 4)
  os.mkfifo(tmp_path / 'pipe.jpg')
  config.data.source, config.data.eval_fraction = f'folder:{tmp_path}', 0.0
  batches = pipeline.train_batches(config)
  assert take(batches, 2)[1]['rgb'].shape == (4, 32, 32, 3)
  assert batches.skip_logs[0].counts() == {'unreadable': 1}


def test_every_file_bad_is_one_clear_error(config, tmp_path):
  for name in ('a.jpg', 'b.png'):
    (tmp_path / name).write_text('not an image')
  config.data.source = f'folder:{tmp_path}'
  config.data.eval_fraction = 0.0
  with pytest.raises(DataError, match='Every image of .* was skipped'):
    take(pipeline.train_batches(config), 1)


def test_grayscale_images_can_be_dropped(config, tmp_path):
  write_colour_images(tmp_path, 3)
  for i in range(2):
    Image.fromarray(colour_image(i)).convert('L').save(tmp_path / f'gray_{i}.jpg')
  config.data.source = f'folder:{tmp_path}'
  config.data.eval_fraction = 0.0
  config.data.drop_grayscale = True
  batches = pipeline.train_batches(config)
  take(batches, 3)
  assert batches.skip_logs[0].counts() == {'grayscale': 2}


@pytest.mark.parametrize('source, message', [
    ('folder:/no/such/folder', 'does not exist'),
    ('nosuch:thing', 'not a known source'),
])
def test_unusable_sources_are_one_sentence(config, source, message):
  config.data.source = source
  with pytest.raises(DataError, match=message):
    pipeline.train_batches(config)


def test_empty_folder_is_one_sentence(config, tmp_path):
  (tmp_path / 'notes.txt').write_text('no images here')
  config.data.source = f'folder:{tmp_path}'
  with pytest.raises(DataError, match='holds no images'):
    pipeline.train_batches(config)


def test_tfds_not_prepared_says_how_to_prepare(config, tmp_path):
  config.data.source = 'tfds:cifar10'
  config.data.data_dir = str(tmp_path)
  with pytest.raises(DataError, match='tfds build cifar10'):
    pipeline.train_batches(config)
  config.data.source = 'tfds:no_such_dataset_xyz'
  with pytest.raises(DataError, match='names no TFDS data set'):
    pipeline.train_batches(config)


def test_tfds_source_with_mock_data(config, tmp_path):
  config.data.source = 'tfds:cifar10'
  config.data.data_dir = str(tmp_path)
  with tfds.testing.mock_data(num_examples=12):
    batch = take(pipeline.train_batches(config), 2)[1]
    assert batch['rgb'].shape == (4, 32, 32, 3) and batch['rgb'].dtype == np.uint8
    config.data.pairing = 'unpaired'
    batch = take(pipeline.train_batches(config), 1)[0]
    assert batch['a'].shape == batch['b'].shape == (4, 32, 32, 3)


def test_processes_read_disjoint_files(config, tmp_path):
  write_colour_images(tmp_path, 10)
  config.data.source = f'folder:{tmp_path}'
  config.data.eval_fraction = 0.2
  source = sources.open_source(config.data)
  assert not set(source.train_files) & set(source.eval_files)
  parts = [source.paths('train', Shard(i, 2)) for i in range(2)]
  assert not set(parts[0]) & set(parts[1])
  assert sorted(parts[0] + parts[1]) == sorted(source.train_files)
  counts = [len(list(pipeline.eval_batches(config, Shard(i, 2)))) for i in range(2)]
  assert counts[0] == counts[1] == 1


def test_a_global_batch_holds_the_same_crops_on_one_or_two_processes(config, tmp_path):
  """Process p of N gets the rows p, p + N, ... of the one-process batch, across epochs and
  from a resumed position."""
  write_colour_images(tmp_path, 6)
  config.data.source = f'folder:{tmp_path}'
  config.data.eval_fraction = 0.0
  config.data.scale_range = (1.0, 1.5)
  one = take(pipeline.train_batches(config), 5)
  halves = [pipeline.train_batches(config, Shard(p, 2)) for p in range(2)]
  two = [take(batches, 3) for batches in halves]
  resumed = [take(pipeline.train_batches(config, Shard(p, 2), halves[p].state), 2)
             for p in range(2)]
  for step in range(5):
    parts = [(two[p] + resumed[p])[step]['rgb'] for p in range(2)]
    np.testing.assert_array_equal(one[step]['rgb'][0::2], parts[0])
    np.testing.assert_array_equal(one[step]['rgb'][1::2], parts[1])


def test_unpaired_streams_are_gray_and_colour_from_disjoint_halves(config, tmp_path):
  write_colour_images(tmp_path, 8)
  config.data.source = f'folder:{tmp_path}'
  config.data.eval_fraction = 0.0
  config.data.pairing = 'unpaired'
  batch = take(pipeline.train_batches(config), 1)[0]
  a, b = batch['a'], batch['b']
  assert (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all()
  assert np.abs(b[..., 0].astype(int) - b[..., 2]).mean() > 10
  source = sources.open_source(config.data)
  halves = [set(source.paths('train', Shard(), h)) for h in (0, 1)]
  assert not halves[0] & halves[1] and len(halves[0] | halves[1]) == 8


def test_lab_batches_match_skimage_on_the_same_crops(config):
  rgb = take(pipeline.train_batches(config), 1)[0]['rgb']
  config.data.color_space = 'lab'
  lab = take(pipeline.train_batches(config), 1)[0]['lab']
  assert lab.dtype == np.float32
  np.testing.assert_allclose(lab, skcolor.rgb2lab(rgb / 255.0), rtol=0, atol=1e-3)


def test_tf_lab_conversion_matches_skimage_over_a_million_colours():
  rng = np.random.default_rng(0)
  colours = np.concatenate([rng.integers(0, 256, (1_000_000, 3)),
                            np.repeat(np.arange(256)[:, None], 3, axis=1),
                            [[r, g, b] for r in (0, 255) for g in (0, 255) for b in (0, 255)]])
  got = tf.function(pipeline.to_lab)(tf.constant(colours.astype(np.uint8))).numpy()
  np.testing.assert_allclose(got, skcolor.rgb2lab(colours / 255.0), rtol=0, atol=1e-3)


@pytest.mark.parametrize('field, value, message', [
    ('data.source', 'ftp:x', "config.data.source='ftp:x' is not allowed"),
    ('data.color_space', 'hsv', "use one of 'rgb', 'lab'"),
    ('data.pairing', 'both', "use one of 'paired', 'unpaired'"),
    ('data.eval_fraction', 1.0, r'in \[0, 1\)'),
    ('image_size', 0, r'an integer in \[1, inf\)'),
    ('batch_size', -4, 'config.batch_size=-4'),
    ('data.scale_range', (2.0, 1.0), '0 < lo <= hi'),
])
def test_bad_data_config_names_the_field(config, field, value, message):
  parent, _, name = ('' + field).rpartition('.')
  (config[parent] if parent else config)[name] = value
  with pytest.raises(validation.ConfigError, match=message):
    validation.validate_data(config)


def test_tensorflow_and_pillow_decoding_give_the_same_crops(config, tmp_path):
  write_colour_images(tmp_path, 4, size=(96, 80), fmt='jpg')
  config.data.source = f'folder:{tmp_path}'
  config.data.eval_fraction = 0.0
  by_tensorflow = take(pipeline.train_batches(config), 2)
  config.data.drop_grayscale = True  # needs the pixels in Python: every image goes to Pillow
  by_pillow = take(pipeline.train_batches(config), 2)
  for a, b in zip(by_tensorflow, by_pillow):
    assert np.abs(a['rgb'].astype(int) - b['rgb']).mean() < 2


def test_a_jpeg_with_corrupt_data_does_not_stop_training(config, tmp_path):
  write_colour_images(tmp_path, 3, fmt='jpg')
  buffer = io.BytesIO()
  Image.fromarray(colour_image(7, size=(64, 64))).save(buffer, 'JPEG')
  data = bytearray(buffer.getvalue())
  data[len(data) // 2:len(data) // 2 + 64] = bytes(range(64))  # garbage in the scan, EOI kept
  (tmp_path / 'corrupt.jpg').write_bytes(bytes(data))
  config.data.source = f'folder:{tmp_path}'
  config.data.eval_fraction = 0.0
  for batch in take(pipeline.train_batches(config), 3):
    assert batch['rgb'].shape == (4, 32, 32, 3)


def test_closing_streams_with_work_in_flight_never_hangs(tmp_path):
  """Pillow-decoded streams closed right after their first batch, and one left open at exit:
  the process must end (a tf.data iterator destroyed with tf.numpy_function calls in flight
  deadlocks on the GIL unless the stream is drained first)."""
  script = tmp_path / 'close.py'
  script.write_text(
      'import sys\n'
      f'sys.path.insert(0, {str(ROOT / "tests")!r})\n'
      'from conftest import load_config\n'
      'from colorjax.data import pipeline\n'
      'config = load_config()\n'
      'config.image_size, config.batch_size = 64, 8\n'
      'for pairing in ["paired", "unpaired"] * 4:\n'
      '  config.data.pairing = pairing\n'
      '  batches = pipeline.train_batches(config)\n'
      '  next(batches)\n'
      '  batches.close()\n'
      'next(pipeline.train_batches(config))\n'
      'print("done")\n')
  result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=240, env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})
  assert result.returncode == 0 and result.stdout.strip() == 'done', result.stderr[-2000:]


TFDS_DEFAULT_FOLDER = '''
import sys
sys.path.insert(0, 'tests')
from conftest import load_config
from colorjax.data import sources
from colorjax.training import train
from test_pipeline import builder_with_splits

config = load_config()
config.data.source = 'tfds:cifar10'         # not prepared: the message names the folder
try:
  sources.open_source(config.data).payloads('train')
except sources.DataError as e:
  print('not prepared:', e)
builder_with_splits('ColourWaves', ('train', 'test'), images=8)().download_and_prepare()
# ^ into TFDS's default folder, $TFDS_DATA_DIR
config.data.source = 'tfds:colour_waves'  # data.data_dir stays ''
config.image_size, config.batch_size, config.num_steps = 32, 4, 2
config.model.features = (4, 8)
state = train.train_and_evaluate(config, sys.argv[1])
print('trained', int(state.step), sources.open_source(config.data).num_examples('train'))
'''


def test_tfds_sets_are_found_in_tfds_default_folder(tmp_path):
  """A set prepared by a real TFDS builder into $TFDS_DATA_DIR trains with data.data_dir
  left empty, and a set that is not there is reported with the folder looked in."""
  data = tmp_path / 'tensorflow_datasets'
  result = subprocess.run([sys.executable, '-c', TFDS_DEFAULT_FOLDER, str(tmp_path / 'run')],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2',
                               'TFDS_DATA_DIR': str(data)})
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.splitlines()
  assert f"TFDS data set 'cifar10' is not prepared in {data}:" in lines[0]
  assert lines[-1] == 'trained 2 8'
  assert (data / 'colour_waves' / '1.0.0' / 'dataset_info.json').is_file()


def builder_with_splits(name, splits, images=2, encoded=()):
  """A real TFDS builder class (registered as ``name``) with ``images`` pictures per split (and
  the ``encoded`` bytes as they are), written to tfrecords with its dataset_info.json by
  ``download_and_prepare``."""
  def _split_generators(self, dl_manager):
    return {split: self._generate_examples(i) for i, split in enumerate(splits)}

  def _generate_examples(self, seed):
    for i in range(images):
      yield i, {'image': colour_image(100 * seed + i, size=(40, 48))}
    for i, data in enumerate(encoded):
      yield images + i, {'image': data}
  return type(name, (tfds.core.GeneratorBasedBuilder,), {
      'VERSION': tfds.core.Version('1.0.0'),
      '_info': lambda self: tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
          {'image': tfds.features.Image(shape=(None, None, 3))})),
      '_split_generators': _split_generators, '_generate_examples': _generate_examples})


HELD_OUT = {'with_validation_and_test': (('train', 'validation', 'test'), 'validation'),
            'with_test_only': (('train', 'test'), 'test'),
            'with_train_only': (('train',), None)}
BUILDERS = {name: builder_with_splits(''.join(w.title() for w in f'colour_{name}'.split('_')),
                                      splits) for name, (splits, _) in HELD_OUT.items()}


@pytest.mark.parametrize('name', HELD_OUT)
def test_an_empty_eval_split_is_the_sets_own_held_out_split(config, tmp_path, name):
  """ImageNet and Places365 hold out 'validation', CIFAR 'test'; a set with neither is one
  sentence; a named eval_split is taken as it is."""
  splits, held_out = HELD_OUT[name]
  BUILDERS[name](data_dir=str(tmp_path)).download_and_prepare()
  config.data.source, config.data.data_dir = f'tfds:colour_{name}', str(tmp_path)
  assert config.data.eval_split == ''
  if held_out is None:
    with pytest.raises(DataError, match=r"has neither a 'validation' nor a 'test' split \(it has "
                                        r"'train'\); set data\.eval_split"):
      sources.open_source(config.data).payloads('eval')
  else:
    assert len(list(sources.open_source(config.data).payloads('eval'))) == 2
    assert sources.open_source(config.data)._split('eval') == held_out
  config.data.eval_split = 'train'
  assert sources.open_source(config.data)._split('eval') == 'train'
