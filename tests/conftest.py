"""Shared test set-up: quiet TensorFlow, a compilation cache, glibc's default malloc, the base
config, and image files written on the fly."""
import importlib
import os
import pathlib
import subprocess
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
ROOT = pathlib.Path(__file__).resolve().parents[1]
# JAX's persistent compilation cache: the many tests (and their subprocesses) that train the
# same tiny networks compile each step once per suite run instead of once per test. Every
# compile, however short: most take under a second at O0, and a repeated run_training.py
# process takes 5.7 s with them cached against 7.6 s.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', str(ROOT / '.pytest_cache' / 'jax'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')

# glibc's default malloc here and in the entry points the tests start: the suite is mostly XLA
# compiles of tiny steps, which one malloc arena (host_memory) slows by about 30%.
os.environ.setdefault('COLORJAX_MALLOC', 'system')

# LLVM's optimisation level 0 for XLA:CPU's generated loops, here and in the subprocesses the
# tests start: the suite's tiny steps are compile-bound, and this takes it from 15.4 to 11.2
# minutes on two cores. The HLO passes, and the library convs and matmuls, are unchanged.
os.environ['XLA_FLAGS'] = (f"{os.environ.get('XLA_FLAGS', '')} "
                           '--xla_backend_optimization_level=0').strip()

import numpy as np
import pytest
from PIL import Image


def load_config(name='default', variant=''):
  """configs/NAME.py's config, or its VARIANT (as in --config=configs/NAME.py:VARIANT)."""
  module = importlib.import_module(f'configs.{name}')
  return module.get_config(variant) if variant else module.get_config()


# Every model family, tiny: name: (config file, variant, overrides) at 32² (VGG's discriminator: 64²), batch 2, thin
# networks
FAMILIES = {
    'unet': ('unet', '', {'model.features': (4, 8, 8, 8, 8)}),
    'pix2pix': ('unet', '', {'model.preset': 'pix2pix', 'model.features': (4, 8, 8, 8, 8)}),
    'fusion': ('fusion', 'demo', {}),
    'classify': ('classify', 'demo', {'model.features': (4, 8, 8)}),
    'cgan': ('cgan', 'demo', {'model.features': (4, 8, 8, 8, 8), 'gan.d_features': 4}),
    'vgg_gan': ('vgg_gan', 'demo', {'image_size': 64, 'model.features': (4, 4, 8, 8, 8),
                                    'model.convs_per_block': 1, 'gan.d_features': 4,
                                    'gan.d_head': (8,)}),
    'cyclegan': ('cyclegan', 'demo', {'model.width': 4, 'model.blocks': 2,
                                      'gan.d_features': 4}),
}


def family_config(name, dtype='float32'):
  """The tiny frozen config of family ``name`` computing in ``dtype``."""
  from colorjax.training import experiment
  file, variant, overrides = FAMILIES[name]
  config = load_config(file, variant)
  config.image_size, config.batch_size, config.compute_dtype = 32, 2, dtype
  config.update_from_flattened_dict(overrides)
  experiment.validate(config)
  return experiment.frozen(config)


@pytest.fixture
def config():
  """The base config at test size: 32² crops, batches of 4."""
  config = load_config()
  config.image_size = 32
  config.batch_size = 4
  return config


def colour_image(seed, size=(48, 40)):
  """A smooth, saturated RGB test picture (uint8 [H, W, 3])."""
  rng = np.random.default_rng(seed)
  h, w = size
  y, x = np.mgrid[0:h, 0:w] / max(h, w)
  phase = rng.uniform(0, 2 * np.pi, 3)
  rgb = 0.5 + 0.45 * np.sin(2 * np.pi * (x[..., None] + 0.7 * y[..., None]) + phase)
  return (rgb * 255).round().astype(np.uint8)


def write_colour_images(folder, count, size=(48, 40), fmt='png'):
  folder.mkdir(parents=True, exist_ok=True)
  paths = []
  for i in range(count):
    path = folder / f'good_{i:02d}.{fmt}'
    Image.fromarray(colour_image(i, size)).save(path)
    paths.append(path)
  return paths


@pytest.fixture(scope='session')
def trained_run(tmp_path_factory):
  """A tiny regression run (32², two levels, two steps) with a checkpoint and config.json."""
  from colorjax.training import train
  workdir = tmp_path_factory.mktemp('run')
  config = load_config()
  config.image_size, config.batch_size, config.num_steps = 32, 4, 2
  config.model.features = (4, 8)
  train.train_and_evaluate(config, str(workdir))
  return workdir


def cpu_devices_env(devices):
  """This process's environment for a subprocess whose JAX fakes ``devices`` CPU devices."""
  return {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2', 'XLA_FLAGS':
          f"{os.environ['XLA_FLAGS']} --xla_force_host_platform_device_count={devices}"}


def run_cli(*args, timeout=300):
  """``colorjax ARGS...`` in a fresh process (its own flags, no TensorFlow logs)."""
  return subprocess.run([sys.executable, '-m', 'colorjax.cli', *map(str, args)], cwd=ROOT,
                        capture_output=True, text=True, timeout=timeout,
                        env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})


def assert_colorizes_like_its_run(trained_run, exported, tmp_path):
  """``colorize --exported=FILE`` on three photos of odd sizes gives what ``colorize
  --workdir=RUN`` gives, to one grey level; returns the photos' folder."""
  inputs = tmp_path / 'in'
  inputs.mkdir()
  for i, size in enumerate(((45, 70), (30, 30), (64, 20))):
    Image.fromarray(colour_image(10 + i, size=size)).save(inputs / f'photo_{i}.png')
  from_run, from_file = tmp_path / 'from_run', tmp_path / 'from_file'
  assert run_cli('colorize', f'--workdir={trained_run}', f'--output={from_run}',
                 inputs).returncode == 0
  result = run_cli('colorize', f'--exported={exported}', f'--output={from_file}', inputs)
  assert result.returncode == 0, result.stderr[-3000:]
  for i in range(3):
    a = np.asarray(Image.open(from_run / f'photo_{i}.png'), np.int16)
    b = np.asarray(Image.open(from_file / f'photo_{i}.png'), np.int16)
    assert a.shape == b.shape and np.abs(a - b).max() <= 1
  return inputs


@pytest.fixture(scope='session')
def keras_inception(tmp_path_factory):
  """Keras InceptionV3 (no top, average pool) with random weights and batch-norm statistics,
  and its weight files {layout: path}."""
  pytest.importorskip('keras')
  import keras
  from keras_reference import images01, randomise, save_all
  model = keras.applications.InceptionV3(weights=None, include_top=False, pooling='avg')
  randomise(model, 2, keras.applications.inception_v3.preprocess_input(
      images01((4, 75, 75, 3), 9) * 255.0))
  return model, save_all(model, tmp_path_factory.mktemp('inception'), keras1=False)


def write_image_mix(folder):
  """Good images of every kind people have, and every kind of bad file, in one folder.

  Returns ({good file names}, {bad file name: the reason it is skipped for}).
  """
  import io
  import struct
  import zlib
  folder.mkdir(parents=True, exist_ok=True)
  photo = Image.fromarray(colour_image(30, size=(48, 64)))
  good = {'photo.jpg': lambda p: photo.save(p, quality=95),
          'photo.png': lambda p: photo.save(p),
          'cmyk.jpg': lambda p: photo.convert('CMYK').save(p, quality=95),
          'gray.jpg': lambda p: photo.convert('L').save(p),
          'sixteen_bit.png': lambda p: Image.fromarray(
              (np.asarray(photo.convert('L'), np.uint16) * 257)).save(p),
          'rgba.png': lambda p: photo.convert('RGBA').save(p),
          'palette.png': lambda p: photo.convert('P').save(p),
          'animated.gif': lambda p: photo.save(p, save_all=True, append_images=[
              photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]),
          'one_pixel.png': lambda p: Image.new('RGB', (1, 1), (200, 30, 30)).save(p),
          'tiny.png': lambda p: photo.resize((12, 9)).save(p)}
  for name, write in good.items():
    write(folder / name)
  encoded = {fmt: io.BytesIO() for fmt in ('JPEG', 'PNG')}
  for fmt, buffer in encoded.items():
    photo.save(buffer, fmt)
  bomb = bytearray(encoded['PNG'].getvalue())
  bomb[16:24] = struct.pack('>II', 100_000, 100_000)  # IHDR width and height, then its CRC
  bomb[29:33] = struct.pack('>I', zlib.crc32(bytes(bomb[12:29])))
  bad = {'zero.jpg': ('empty', b''),
         'truncated.jpg': ('undecodable', encoded['JPEG'].getvalue()[:300]),
         'truncated.png': ('undecodable', encoded['PNG'].getvalue()[:200]),
         'text.jpg': ('undecodable', b'a text file, not a JPEG'),
         'bomb.png': ('too large', bytes(bomb))}
  for name, (_, data) in bad.items():
    (folder / name).write_bytes(data)
  # Unreadable: a link to nowhere (root reads through any permission bits).
  os.symlink(folder / 'gone.jpg', folder / 'unreadable.jpg')
  reasons = {name: reason for name, (reason, _) in bad.items()}
  reasons['unreadable.jpg'] = 'unreadable'
  forbidden = folder / 'forbidden.png'
  photo.save(forbidden)
  os.chmod(forbidden, 0)
  if os.access(forbidden, os.R_OK):
    good['forbidden.png'] = None
  else:
    reasons['forbidden.png'] = 'unreadable'
  return set(good), reasons


@pytest.fixture(scope='session')
def keras_vgg_file(tmp_path_factory):
  """A Keras VGG16 (no top) with random weights saved as .h5, and the model."""
  keras = pytest.importorskip('keras')
  from keras_reference import randomise
  model = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
  randomise(model, 7)
  path = tmp_path_factory.mktemp('vgg') / 'vgg16_notop.h5'
  model.save(path)
  return model, str(path)
