"""colorjax colorize on a checkpoint trained here, with good, bad and unsafe inputs."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from skimage import color as skcolor

from colorjax import train
from colorjax.colorize import output_path
from colorjax.data import images
from conftest import ROOT, colour_image, load_config


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('run')
  config = load_config()
  config.image_size, config.batch_size, config.num_steps = 32, 4, 2
  config.model.features = (4, 8)
  train.train_and_evaluate(config, str(workdir))
  return workdir


def test_output_paths_stay_under_the_output_folder(tmp_path):
  assert output_path(tmp_path, 'a/b.jpg', 'png') == os.path.realpath(tmp_path / 'a' / 'b.png')
  with pytest.raises(images.ImageError, match='outside'):
    output_path(tmp_path, '../../etc/passwd', 'png')


def test_colorize_keeps_size_and_lightness_and_reports_failures(run, tmp_path):
  inputs = tmp_path / 'in'
  (inputs / 'album').mkdir(parents=True)
  colour = colour_image(1, size=(45, 70))
  Image.fromarray(colour).save(inputs / 'album' / 'colour.png')
  gray = colour_image(2, size=(81, 30))[..., 0]
  Image.fromarray(gray).save(inputs / 'gray.jpg', quality=98)
  (inputs / 'album' / 'broken.jpg').write_text('not an image')
  out = tmp_path / 'out'
  result = subprocess.run(
      [sys.executable, '-m', 'colorjax.cli', 'colorize', f'--workdir={run}', f'--output={out}',
       '--keep_original', str(inputs), str(tmp_path / 'missing.png')],
      cwd=ROOT, capture_output=True, text=True, timeout=300,
      env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})
  assert result.returncode == 1, result.stderr[-3000:]
  assert 'Colorized 2 image(s)' in result.stdout
  assert 'broken.jpg' in result.stderr and 'missing.png' in result.stderr
  assert 'tensorflow' not in result.stderr.lower()
  for relative, original in (('album/colour.png', colour), ('gray.png', None)):
    written = np.asarray(Image.open(out / relative).convert('RGB'))
    if original is None:
      original = np.repeat(np.asarray(Image.open(inputs / 'gray.jpg'))[..., None], 3, axis=-1)
    assert written.shape == original.shape
    L_in = skcolor.rgb2lab(original / 255.0)[..., 0]
    L_out = skcolor.rgb2lab(written / 255.0)[..., 0]
    assert np.abs(L_in - L_out).mean() < 0.5 and np.percentile(np.abs(L_in - L_out), 99) < 2
  side_by_side = Image.open(out / 'album' / 'colour_compare.png')
  assert side_by_side.size == (2 * 70, 45)


def test_colorize_never_overwrites_an_input(run, tmp_path):
  Image.fromarray(colour_image(3)).save(tmp_path / 'photo.png')
  result = subprocess.run(
      [sys.executable, '-m', 'colorjax.cli', 'colorize', f'--workdir={run}',
       f'--output={tmp_path}', str(tmp_path / 'photo.png')],
      cwd=ROOT, capture_output=True, text=True, timeout=300,
      env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})
  assert result.returncode == 1 and 'overwrite an input' in result.stderr
  np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / 'photo.png')), colour_image(3))
