"""Losses and metrics against scikit-image and float64 NumPy."""
import jax.numpy as jnp
import numpy as np
from skimage import metrics as skmetrics

from colorjax import losses, metrics


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
