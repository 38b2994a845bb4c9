"""Shared test set-up: quiet TensorFlow, the base config, and image files written on the fly."""
import importlib.util
import os
import pathlib

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np
import pytest
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_config(name='default'):
  spec = importlib.util.spec_from_file_location(name, ROOT / 'configs' / f'{name}.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


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
