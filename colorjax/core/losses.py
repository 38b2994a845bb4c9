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
  [..., K], each pixel weighted by ``pixel_weights`` [...].

  Computed as Σ_k w_k · logsumexp(logits) - Σ_q target_q · logits_q with the targets spread
  densely over the Q bins (a compare with the bin index, fused): no gather of K log
  probabilities and no scatter in its gradient, and no log-softmax tensor written out."""
  logits = logits.astype(jnp.float32)
  bins = jnp.arange(logits.shape[-1], dtype=indices.dtype)
  target = jnp.sum(jnp.where(indices[..., None] == bins, weights[..., None], 0.0), axis=-2)
  cross_entropy = (jnp.sum(weights, axis=-1) * jax.nn.logsumexp(logits, axis=-1)
                   - jnp.sum(target * logits, axis=-1))
  return jnp.mean(pixel_weights * cross_entropy)


GAN_OBJECTIVES = ('vanilla', 'lsgan', 'hinge')


def _log_sigmoid(logits, epsilon):
  """log D = log sigmoid(logits): exact from the logits, or log(D + epsilon) when epsilon > 0."""
  if epsilon > 0:
    return jnp.log(jax.nn.sigmoid(logits) + epsilon)
  return jax.nn.log_sigmoid(logits)


def discriminator_loss(objective, real_logits, fake_logits, epsilon=0.0):
  """D's loss on real and generated patches, halved as pix2pix and CycleGAN do (D learns at half
  G's rate): vanilla -log D(real) - log(1 - D(fake)), LSGAN (D(real) - 1)² + D(fake)², or hinge
  max(0, 1 - D(real)) + max(0, 1 + D(fake)); means over every patch and image."""
  if objective == 'lsgan':
    real, fake = jnp.square(real_logits - 1.0), jnp.square(fake_logits)
  elif objective == 'hinge':
    real, fake = jax.nn.relu(1.0 - real_logits), jax.nn.relu(1.0 + fake_logits)
  else:
    real, fake = -_log_sigmoid(real_logits, epsilon), -_log_sigmoid(-fake_logits, epsilon)
  return 0.5 * (jnp.mean(real) + jnp.mean(fake))


def generator_loss(objective, fake_logits, epsilon=0.0):
  """G's adversarial loss: vanilla non-saturating -log D(G(x)), LSGAN (D(G(x)) - 1)², or hinge
  -D(G(x))."""
  if objective == 'lsgan':
    return jnp.mean(jnp.square(fake_logits - 1.0))
  if objective == 'hinge':
    return -jnp.mean(fake_logits)
  return -jnp.mean(_log_sigmoid(fake_logits, epsilon))


def discriminator_output(objective, logits):
  """Mean D output to log: the probability sigmoid(logits) for vanilla, the raw score for LSGAN
  and hinge (trained towards 1 on real and 0 / -1 on fake)."""
  return jnp.mean(jax.nn.sigmoid(logits) if objective == 'vanilla' else logits)
