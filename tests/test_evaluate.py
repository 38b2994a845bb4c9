"""colorjax evaluate on a trained run: every figure recomputed independently (scikit-image for
the colour metrics, float64 NumPy for colourfulness and, on Keras InceptionV3 features, FID)."""
import json

import jax
import numpy as np
import pytest
from PIL import Image
from skimage import color as skcolor
from skimage import metrics as skmetrics

from colorjax.training import runs
from conftest import colour_image, run_cli

SIZE = 32  # the trained run's image_size: these images are their own centre crops


def colourfulness(rgb):
  rgb = 255 * rgb.astype(np.float64)
  rg, yb = rgb[..., 0] - rgb[..., 1], (rgb[..., 0] + rgb[..., 1]) / 2 - rgb[..., 2]
  return np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())


def reference_rows(originals, predicted_ab):
  """The report's rows computed image by image with scikit-image."""
  rows = {'prediction': [], 'gray': []}
  for rgb, ab in zip(originals, predicted_ab):
    lab = skcolor.rgb2lab(rgb)
    for name, guess in (('prediction', ab), ('gray', np.zeros_like(ab))):
      out = np.clip(skcolor.lab2rgb(np.concatenate([lab[..., :1], guess], -1)), 0, 1)
      rows[name].append({
          'psnr': skmetrics.peak_signal_noise_ratio(rgb, out, data_range=1.0),
          'ssim': skmetrics.structural_similarity(rgb, out, gaussian_weights=True, sigma=1.5,
                                                  use_sample_covariance=False, data_range=1.0,
                                                  channel_axis=-1),
          'ab_error': np.abs(guess - lab[..., 1:]).mean(),
          'delta_e': skcolor.deltaE_ciede2000(skcolor.rgb2lab(out), lab).mean(),
          'colourfulness': colourfulness(out)})
  return {name: {m: np.mean([r[m] for r in values]) for m in values[0]}
          for name, values in rows.items()}


def keras_fid(model, a, b, scale=None, shift=None):
  """FID on Keras InceptionV3 features, from the n x n matrix of centred features A B^T. The
  images (float in [0, 1]) go in as Keras preprocesses them, or as x * scale + shift.

  With Σa = AᵀA / (n-1), Σb = BᵀB / (n-1) and n < 2048 features, the nonzero eigenvalues of
  Σa Σb are those of (A Bᵀ)(A Bᵀ)ᵀ / (n-1)², so tr sqrt(Σa Σb) is the sum of A Bᵀ's singular
  values / (n-1): the textbook formula without its 2048² matrix square root (10 s here).
  """
  import keras
  import tensorflow as tf

  def features(images):
    resized = tf.image.resize(images.astype(np.float32), (299, 299), antialias=False).numpy()
    x = (keras.applications.inception_v3.preprocess_input(resized * 255.0) if scale is None
         else resized * np.asarray(scale, np.float32) + np.asarray(shift, np.float32))
    return np.asarray(model(x, training=False), np.float64)
  fa, fb = features(a), features(b)
  mean_a, mean_b = fa.mean(0), fb.mean(0)
  centred_a, centred_b = fa - mean_a, fb - mean_b
  n = len(fa)
  assert n == len(fb) < fa.shape[1]
  trace_root = np.linalg.svd(centred_a @ centred_b.T, compute_uv=False).sum() / (n - 1)
  return (np.sum((mean_a - mean_b) ** 2)
          + (np.sum(centred_a ** 2) + np.sum(centred_b ** 2)) / (n - 1) - 2 * trace_root)


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
  """Six 32² photos: two eval batches of four, the second padded."""
  folder = tmp_path_factory.mktemp('test_photos')
  originals = [colour_image(20 + i, size=(SIZE, SIZE)) for i in range(6)]
  for i, rgb in enumerate(originals):
    Image.fromarray(rgb).save(folder / f'photo_{i}.png')
  return folder, np.stack(originals) / 255.0


def test_evaluate_matches_scikit_image_and_keras_fid(trained_run, photos, keras_inception,
                                                     tmp_path):
  folder, originals = photos
  model, weight_files = keras_inception
  result = run_cli('evaluate', f'--workdir={trained_run}', f'--data=folder:{folder}',
                   '--fid_network=keras', f'--fid_weights={weight_files["keras3"]}',
                   f'--output={tmp_path}')
  assert result.returncode == 0, result.stderr[-3000:]
  (json_path,) = tmp_path.glob('step_2-folder_*.json')
  report = json.loads(json_path.read_text())
  assert report['images'] == 6 and report['step'] == 2
  assert '| prediction |' in json_path.with_suffix('.md').read_text()

  run = runs.load(trained_run)
  lab = skcolor.rgb2lab(originals).astype(np.float32)
  predicted_ab = np.asarray(jax.jit(run.task.predict)(run.state, lab[..., :1]), np.float64)
  want = reference_rows(originals, predicted_ab)
  for name in ('prediction', 'gray'):
    for metric, value in want[name].items():
      np.testing.assert_allclose(report['rows'][name][metric], value, rtol=2e-3, atol=2e-3,
                                 err_msg=f'{name} {metric}')
  original_cf = np.mean([colourfulness(x) for x in originals])
  np.testing.assert_allclose(report['rows']['original']['colourfulness'], original_cf, rtol=1e-4)
  for name in ('prediction', 'gray'):
    np.testing.assert_allclose(report['rows'][name]['delta_cf'],
                               abs(want[name]['colourfulness'] - original_cf), rtol=2e-3)
  assert report['fid']['network'] == 'keras'
  assert report['fid']['weights'] == str(weight_files['keras3'])

  gray = np.stack([np.clip(skcolor.lab2rgb(np.concatenate([x[..., :1], 0 * x[..., 1:]], -1)),
                           0, 1) for x in lab])
  want_fid = keras_fid(model, gray, originals)
  np.testing.assert_allclose(report['rows']['gray']['fid'], want_fid, rtol=1e-2)


def test_evaluate_without_inception_weights_skips_fid_with_one_sentence(trained_run, tmp_path,
                                                                        monkeypatch):
  monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'empty'))
  result = run_cli('evaluate', f'--workdir={trained_run}', f'--output={tmp_path}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'FID skipped: pt_inception-2015-12-05-6726825d.pth' in result.stderr
  assert str(tmp_path / 'empty' / 'hub' / 'checkpoints') in result.stderr
  (json_path,) = tmp_path.glob('step_2-samples.json')
  report = json.loads(json_path.read_text())
  assert 'fid' not in report['rows']['prediction']
  assert report['rows']['gray']['colourfulness'] < 0.5 < report['rows']['original'][
      'colourfulness']


def test_evaluate_standard_fid_matches_pytorch_fid(trained_run, photos, tmp_path):
  """The default network end to end: colorjax's FID of the no-colour baseline against
  pytorch-fid's features and its own (scipy) Fréchet distance, on the same random weights."""
  from tests import fid_reference
  try:
    fid_reference.import_pytorch_fid()
  except ImportError:
    pytest.skip('needs torch, torchvision and pytorch-fid')
  import torch
  from pytorch_fid.fid_score import calculate_frechet_distance
  folder, originals = photos
  model, weights = fid_reference.torch_network('standard')
  torch.save(weights, tmp_path / 'fid.pth')
  result = run_cli('evaluate', f'--workdir={trained_run}', f'--data=folder:{folder}',
                   f'--fid_weights={tmp_path / "fid.pth"}', f'--output={tmp_path}')
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads(next(tmp_path.glob('step_2-folder_*.json')).read_text())
  assert report['fid']['network'] == 'standard'
  assert ', network standard (' in next(tmp_path.glob('step_2-folder_*.md')).read_text()

  lab = skcolor.rgb2lab(originals)
  gray = np.stack([np.clip(skcolor.lab2rgb(np.concatenate([x[..., :1], 0 * x[..., 1:]], -1)),
                           0, 1) for x in lab])

  def statistics(images):
    with torch.no_grad():
      features = model(torch.from_numpy(images).float().permute(0, 3, 1, 2))[0][:, :, 0, 0]
    features = features.numpy().astype(np.float64)
    return features.mean(0), np.cov(features, rowvar=False)
  want = calculate_frechet_distance(*statistics(gray), *statistics(originals))
  np.testing.assert_allclose(report['rows']['gray']['fid'], want, rtol=1e-2)
