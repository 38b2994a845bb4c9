"""Losses and metrics against scikit-image and float64 NumPy."""
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from skimage import color as skcolor
from skimage import metrics as skmetrics

from colorjax import evaluation
from colorjax.core import losses, metrics


def images(seed, shape=(3, 40, 36, 3)):
  rng = np.random.default_rng(seed)
  base = rng.uniform(size=shape)
  return base, np.clip(base + rng.normal(0, 0.1, shape), 0, 1)


def test_ssim_matches_skimage_gaussian_ssim():
  a, b = images(0)
  got = np.asarray(losses.ssim(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)))
  want = [skmetrics.structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
                                          use_sample_covariance=False, data_range=1.0,
                                          channel_axis=-1) for x, y in zip(a, b)]
  np.testing.assert_allclose(got, want, atol=1e-4)
  np.testing.assert_allclose(losses.ssim_loss(jnp.asarray(a), jnp.asarray(b)),
                             1 - np.mean(want), atol=1e-4)


def test_psnr_matches_skimage():
  a, b = images(1)
  got = np.asarray(metrics.psnr(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)))
  want = [skmetrics.peak_signal_noise_ratio(x, y, data_range=1.0) for x, y in zip(b, a)]
  np.testing.assert_allclose(got, want, atol=1e-3)


def test_pixel_losses_and_ab_error_match_numpy():
  a, b = images(2)
  np.testing.assert_allclose(losses.l1(jnp.asarray(a), jnp.asarray(b)), np.abs(a - b).mean(),
                             rtol=1e-5)
  np.testing.assert_allclose(losses.l2(jnp.asarray(a), jnp.asarray(b)),
                             np.square(a - b).mean(), rtol=1e-5)
  ab, target = 100 * a[..., :2], 100 * b[..., :2]
  np.testing.assert_allclose(metrics.ab_error(jnp.asarray(ab), jnp.asarray(target)),
                             np.abs(ab - target).mean(axis=(1, 2, 3)), rtol=1e-5)


def test_weighted_sum():
  terms = {'l1': jnp.float32(2.0), 'ssim': jnp.float32(0.5)}
  assert float(losses.weighted_sum(terms, {'l1': 0.5, 'ssim': 2.0})) == 2.0


def test_ciede2000_matches_skimage():
  rng = np.random.default_rng(3)
  lab1 = np.stack([rng.uniform(0, 100, 4000), rng.uniform(-110, 110, 4000),
                   rng.uniform(-110, 110, 4000)], -1)
  lab2 = lab1 + rng.normal(0, 8, lab1.shape)
  # Neutral colours, equal colours and hue differences across 0/360° (the formula's branches).
  lab2[:50, 1:] = 0
  lab2[50:100] = lab1[50:100]
  lab1[100:150, 1:], lab2[100:150, 1:] = [[5, -0.5]], [[5, 0.5]]
  got = np.asarray(metrics.ciede2000(jnp.asarray(lab1, jnp.float32),
                                     jnp.asarray(lab2, jnp.float32)))
  np.testing.assert_allclose(got, skcolor.deltaE_ciede2000(lab1, lab2), atol=2e-3)


def test_ciede2000_on_sharma_reference_pairs():
  # Pairs 1, 7 and 17 of Sharma, Wu and Dalal's published test data, with their ΔE00.
  lab1 = np.array([[50, 2.6772, -79.7751], [50, 0, 0], [50, 2.5, 0]], np.float32)
  lab2 = np.array([[50, 0, -82.7485], [50, -1, 2], [73, 25, -18]], np.float32)
  np.testing.assert_allclose(metrics.ciede2000(jnp.asarray(lab1), jnp.asarray(lab2)),
                             [2.0425, 2.3669, 27.1492], atol=1e-3)


def test_colourfulness_matches_float64_numpy():
  a, _ = images(4)
  rgb = 255 * a.astype(np.float64)
  rg, yb = rgb[..., 0] - rgb[..., 1], (rgb[..., 0] + rgb[..., 1]) / 2 - rgb[..., 2]
  want = [np.sqrt(r.std() ** 2 + y.std() ** 2) + 0.3 * np.sqrt(r.mean() ** 2 + y.mean() ** 2)
          for r, y in zip(rg, yb)]
  np.testing.assert_allclose(metrics.colourfulness(jnp.asarray(a, jnp.float32)), want,
                             rtol=1e-4)
  assert float(metrics.colourfulness(jnp.full((1, 8, 8, 3), 0.4))[0]) < 1e-3


def test_frechet_distance_matches_scipy_sqrtm_formula():
  rng = np.random.default_rng(5)
  a = rng.normal(size=(300, 16)) @ rng.normal(size=(16, 16))
  b = rng.normal(0.5, 1.0, size=(200, 16)) @ rng.normal(size=(16, 16))
  mean_a, mean_b = a.mean(0), b.mean(0)
  cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  want = (np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b)
          - 2 * np.trace(scipy.linalg.sqrtm(cov_a @ cov_b).real))
  np.testing.assert_allclose(evaluation.frechet_distance(a, b), want, rtol=1e-8)
  assert abs(evaluation.frechet_distance(a, a)) < 1e-6
