"""ab quantised into bins (Zhang, Isola and Efros, "Colorful Image Colorization", 2016).

The bins are the cells of a grid of step 10 over ab, centred on multiples of 10, that hold at
least one 8-bit sRGB colour (computed from colorjax.core.color, no tables). A pixel's target is
soft: its 5 nearest bins weighted by a Gaussian of their distance. Class rebalancing weighs
each pixel by its nearest bin's weight, from the empirical prior smoothed and mixed with a
uniform distribution. Decoding turns bin probabilities back into ab: the annealed mean, the
mean or the mode.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from colorjax.core import color

BIN_SIZE = 10.0
DECODINGS = ('annealed_mean', 'mean', 'mode')


@functools.lru_cache(maxsize=None)
def centres():
  """The in-gamut bin centres, float64 [Q, 2] in Lab units, sorted by a then b (Q = 261).

  A cell holds an 8-bit sRGB colour when one on the faces of the RGB cube falls in it: the
  colours of one ab form a segment of L whose ends lie on the cube's surface (the tests check
  this against every 8-bit colour).
  """
  levels = np.arange(256) / 255.0
  u, v = (x.ravel() for x in np.meshgrid(levels, levels, indexing='ij'))
  faces = [np.stack(np.insert(np.stack([u, v]), axis, np.full_like(u, side), axis=0), -1)
           for axis in range(3) for side in (0.0, 1.0)]
  ab = color.rgb_to_lab(np.concatenate(faces), xp=np)[:, 1:]
  cells = np.unique(np.round(ab / BIN_SIZE), axis=0)
  found = BIN_SIZE * cells
  found.flags.writeable = False  # cached: shared by every caller
  return found


def _squared_distances(ab, bin_centres):
  """[..., 2] x [Q, 2] -> [..., Q]."""
  return jnp.sum(jnp.square(ab[..., None, :] - bin_centres), axis=-1)


def nearest(ab, bin_centres):
  """Index of the nearest bin of each ab [..., 2]."""
  return jnp.argmin(_squared_distances(ab, bin_centres), axis=-1)


def soft_encode(ab, bin_centres, neighbours=5, sigma=5.0):
  """(indices, weights) [..., neighbours]: each ab's nearest bins, nearest first (ties: the
  lower index), weighted by exp(-d² / 2σ²) and normalised to sum to 1.

  One arg-min over the bins per neighbour, each masking the bins already found, with the
  distances recomputed from ab inside it: XLA fuses each into one pass over ab, where a top_k
  sorted a [..., Q] tensor (on TPU, a sort and copies of [..., Q] indices and distances)."""
  bin_ids = jnp.arange(len(bin_centres))
  indices, distances = [], []
  for _ in range(neighbours):
    d2 = _squared_distances(ab, bin_centres)
    for found in indices:
      d2 = jnp.where(bin_ids == found[..., None], jnp.inf, d2)
    indices.append(jnp.argmin(d2, axis=-1))
    distances.append(jnp.min(d2, axis=-1))
  weights = jax.nn.softmax(-jnp.stack(distances, axis=-1) / (2.0 * sigma ** 2), axis=-1)
  return jnp.stack(indices, axis=-1).astype(jnp.int32), weights


def smoothed(prior, bin_centres, sigma):
  """The prior convolved with a Gaussian of width ``sigma`` over the bin centres, normalised
  (float64, on the host)."""
  d2 = np.sum(np.square(bin_centres[:, None] - bin_centres[None]), axis=-1)
  result = np.exp(-d2 / (2.0 * sigma ** 2)) @ np.asarray(prior, np.float64)
  return result / result.sum()


def rebalancing_weights(prior, bin_centres, sigma=5.0, uniform_mix=0.5):
  """w ∝ 1 / ((1 - λ) p̃ + λ / Q), p̃ the smoothed prior and λ ``uniform_mix``, normalised so
  that the expected weight under p̃ is 1 (float64 [Q])."""
  p = smoothed(prior, bin_centres, sigma)
  w = 1.0 / ((1.0 - uniform_mix) * p + uniform_mix / len(p))
  return w / np.sum(p * w)


def decode(logits, bin_centres, method='annealed_mean', temperature=0.38):
  """Bin logits [..., Q] -> ab [..., 2]: the mean of the bin centres under the probabilities
  re-normalised at ``temperature`` (softmax(logits / T)), the plain mean (T = 1) or the mode."""
  if method == 'mode':
    return bin_centres[jnp.argmax(logits, axis=-1)]
  if method == 'mean':
    temperature = 1.0
  return jax.nn.softmax(logits / temperature, axis=-1) @ bin_centres
