"""Pixel losses for colorization (jnp; mean over everything they are given)."""
import dm_pix
import jax
import jax.numpy as jnp

PIXEL_LOSSES = ('l1', 'l2', 'ssim')
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def l1(prediction, target):
  return jnp.mean(jnp.abs(prediction - target))


def l2(prediction, target):
  return jnp.mean(jnp.square(prediction - target))


def ssim(a, b, max_val=1.0):
  """Per-image SSIM with an 11x11 Gaussian window (sigma 1.5), averaged over channels."""
  return dm_pix.ssim(a, b, max_val=max_val, filter_size=SSIM_WINDOW, filter_sigma=SSIM_SIGMA)


def ssim_loss(prediction, target):
  """1 - mean SSIM of two image batches in [0, 1]."""
  return 1.0 - jnp.mean(ssim(prediction, target))


def weighted_sum(terms, weights):
  """sum_k weights[k] * terms[k] over the terms present in ``weights``."""
  return sum(weights[name] * terms[name] for name in weights)


def rebalanced_cross_entropy(logits, indices, weights, pixel_weights):
  """Mean over pixels of pixel_weight · -Σ_k weight_k log softmax(logits)[index_k]: the
  cross-entropy of bin logits [..., Q] against soft targets given as (indices, weights)
  [..., K], each pixel weighted by ``pixel_weights`` [...]."""
  log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  target_log_p = jnp.take_along_axis(log_p, indices, axis=-1)
  return jnp.mean(pixel_weights * -jnp.sum(weights * target_log_p, axis=-1))
