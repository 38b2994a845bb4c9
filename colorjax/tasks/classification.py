"""Colorization as classification over ab bins (Zhang, Isola and Efros, 2016).

The network (U-Net or fusion CNN, ``config.model``) gives logits over the in-gamut ab bins at
every pixel, trained with cross-entropy against soft-encoded targets (``classify.neighbours``
nearest bins, Gaussian ``classify.sigma``), each pixel weighted by its nearest bin's class
rebalancing weight. The weights come from the bin prior that ``colorjax prior`` computes
(``classify.prior``; uniform when empty): ``init`` computes them on the host into the state's
``constants``, which the step's program holds as constants (not saved: a resume recomputes
them from the config and that file). ``predict`` decodes by the annealed mean (or the mean, or
the mode).
"""
import os

import flax
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from colorjax.core import bins, color, losses, validation
from colorjax.tasks import network
from colorjax.tasks.inputs import rgb_and_lab

INIT_FROM_BRANCH = None
pretrained = network.pretrained
total_stride = network.total_stride
HEAD = {'output_activation': 'none', 'join_l': False}   # the network gives logits only


def build_model(config):
  return network.build(config, out_channels=len(bins.centres()), **HEAD)


def init(rng, config, image_shape, weights=None):
  """A fresh TrainState for images of ``image_shape`` (H, W); ``weights`` from ``pretrained``;
  the class weights, read once, in its constants."""
  state = network.init(rng, config, image_shape, build_model(config), weights)
  return state.replace(constants=flax.core.freeze(
      {'class_weights': tuple(class_weights(config).tolist())}))


def load_prior(path):
  """A prior written by ``colorjax prior``: float [Q], non-negative, summing to 1."""
  size = len(bins.centres())
  try:
    prior = np.load(path, allow_pickle=False)
  except (OSError, ValueError) as e:
    raise validation.UserError(f'{path} is not a readable .npy prior ({e}); compute it with '
                               'colorjax prior.') from None
  if (prior.shape != (size,) or prior.dtype.kind != 'f' or not np.all(np.isfinite(prior))
      or np.any(prior < 0) or not np.isclose(prior.sum(), 1.0)):
    raise validation.UserError(f'{path} is not a prior over the {size} ab bins (a float array '
                               f'of shape ({size},) summing to 1); compute it with colorjax '
                               'prior.')
  return prior


def class_weights(config):
  """The rebalancing weight of each bin (float32 [Q]), from the config and its prior file.

  Only training reads them, and training validates the prior file first; a run folder
  loaded for inference without its prior file (moved, say) gets uniform weights, which
  ``predict`` never reads."""
  centres = bins.centres()
  if config.classify.prior and os.path.isfile(config.classify.prior):
    prior = load_prior(config.classify.prior)
  else:
    prior = np.full(len(centres), 1.0 / len(centres))
  return bins.rebalancing_weights(prior, centres, config.classify.prior_sigma,
                                  config.classify.uniform_mix).astype(np.float32)


def train_step(state, batch):
  _, lab = rgb_and_lab(batch)
  L, ab = color.split_lab(lab)
  options = state.config.classify
  centres = jnp.asarray(bins.centres(), jnp.float32)
  indices, weights = bins.soft_encode(ab, centres, options.neighbours, options.sigma)
  # The nearest bin again by argmin, not indices[..., 0]: on XLA CPU a step that reads top_k's
  # indices here ran 2.4x slower.
  bin_weights = jnp.asarray(state.constants['class_weights'], jnp.float32)
  pixel_weights = bin_weights[bins.nearest(ab, centres)]

  def loss_fn(logits):
    return losses.rebalanced_cross_entropy(logits, indices, weights, pixel_weights), {}

  return network.train_step(state, L, loss_fn)


def predict(state, L):
  """L in Lab units [N, H, W, 1] -> ab in Lab units, decoded from the bin logits."""
  options = state.config.classify
  return bins.decode(network.apply(state, L), jnp.asarray(bins.centres(), jnp.float32),
                     options.decode, options.temperature)


def eval_step(state, batch):
  """Metrics of the prediction and the no-colour baseline, summed over the valid images."""
  return network.eval_sums(predict, state, batch)


def validate(config):
  """The model and classify fields of a classification run (one sentence per problem)."""
  network.validate(config, head_fields=(('output_activation', HEAD['output_activation']),))
  validation.check_number(config, 'classify.neighbours', low=1, high=len(bins.centres()),
                          integer=True)
  for field in ('classify.sigma', 'classify.prior_sigma', 'classify.temperature'):
    validation.check_number(config, field, low=0, low_open=True)
  validation.check_number(config, 'classify.uniform_mix', low=0, high=1, low_open=True)
  validation.check_choice(config, 'classify.decode', bins.DECODINGS)
  prior = validation.get_field(config, 'classify.prior')
  if not isinstance(prior, str) or (prior and not os.path.isfile(prior)):
    raise validation.ConfigError(f'config.classify.prior={prior!r} is not allowed; use a .npy '
                                 "file written by colorjax prior, or '' for a uniform prior.")
  if prior:
    load_prior(prior)
  else:
    logging.warning('config.classify.prior is empty, so class rebalancing uses a uniform prior '
                    '(compute one with colorjax prior).')


@jax.jit
def bin_counts(batch):
  """Pixels per bin [Q] of a training batch."""
  ab = color.split_lab(rgb_and_lab(batch)[1])[1]
  centres = jnp.asarray(bins.centres(), jnp.float32)
  return jnp.bincount(bins.nearest(ab, centres).ravel(), length=len(centres))


def empirical_prior(config, images):
  """(prior float64 [Q], crops counted): bin frequencies over whole training batches."""
  from colorjax.data import pipeline  # imports TensorFlow
  batches = pipeline.train_batches(config)
  counts, seen = np.zeros(len(bins.centres()), np.float64), 0
  try:
    while seen < images:
      batch = next(batches)
      counts += np.asarray(bin_counts(batch))
      seen += len(next(iter(batch.values())))
  finally:
    batches.close()
  return counts / counts.sum(), seen
