"""Regression colorization: a network maps L to ab, trained with L1 / L2 / SSIM losses."""
import functools

import jax
import jax.numpy as jnp

from colorjax.core import color, losses, validation
from colorjax.tasks import network
from colorjax.tasks.inputs import rgb_and_lab

INIT_FROM_BRANCH = None
pretrained = network.pretrained
total_stride = network.total_stride


def build_model(config):
  return network.build(config, out_channels=2)


def init(rng, config, image_shape, weights=None):
  """A fresh TrainState for images of ``image_shape`` (H, W); ``weights`` from ``pretrained``."""
  return network.init(rng, config, image_shape, build_model(config), weights)


def output_to_ab(output, model):
  """The network's output -> normalised ab (about [-1, 1])."""
  if model.join_l:
    output = output[..., 1:]
  if model.output_activation == 'sigmoid':
    output = 2.0 * output - 1.0
  return output


def _loss_terms(ab_norm, target_ab_norm, L, rgb, names):
  terms = {}
  if 'l1' in names:
    terms['l1'] = losses.l1(ab_norm, target_ab_norm)
  if 'l2' in names:
    terms['l2'] = losses.l2(ab_norm, target_ab_norm)
  if 'ssim' in names:
    predicted_rgb = color.join_l_ab(L, color.denormalize_ab(ab_norm))
    terms['ssim'] = losses.ssim_loss(predicted_rgb, rgb)
  return terms


def loss_phases(config):
  """The weights of each phase of training: [loss.weights], or [loss.weights,
  loss.switch_weights] when loss.switch_step > 0, every phase naming every term of any phase
  (0 where a phase does not use it)."""
  phases = [dict(config.loss.weights)]
  if config.loss.switch_step > 0:
    phases.append(dict(config.loss.switch_weights))
  names = sorted(set().union(*phases))
  return [{n: float(p.get(n, 0.0)) for n in names} for p in phases]


def phase_loss(ab_norm, target, L, rgb, weights):
  """(the weighted loss, every term): the terms of weight 0 are measured for the metrics but
  not differentiated (no backward pass of an SSIM the phase does not train on)."""
  trained = [n for n, w in weights.items() if w]
  measured = [n for n, w in weights.items() if not w]
  terms = _loss_terms(ab_norm, target, L, rgb, trained)
  terms.update(_loss_terms(jax.lax.stop_gradient(ab_norm), target, L, rgb, measured))
  return losses.weighted_sum(terms, {n: weights[n] for n in trained}), terms


def train_step(state, batch):
  rgb, lab = rgb_and_lab(batch)
  L, ab = color.split_lab(lab)
  target = color.normalize_ab(ab)
  phases = loss_phases(state.config)

  def loss_fn(output):
    ab_norm = output_to_ab(output, state.model)
    branches = [functools.partial(phase_loss, weights=w) for w in phases]
    if len(branches) == 1:
      return branches[0](ab_norm, target, L, rgb)
    # One phase is computed per step (a conditional, not both weighted by 0 and 1).
    switched = (state.step >= state.config.loss.switch_step).astype(jnp.int32)
    return jax.lax.switch(switched, branches, ab_norm, target, L, rgb)

  return network.train_step(state, L, loss_fn)


def predict(state, L):
  """L in Lab units [N, H, W, 1] -> predicted ab in Lab units."""
  return color.denormalize_ab(output_to_ab(network.apply(state, L), state.model))


def eval_step(state, batch):
  """Metrics of the prediction and the no-colour baseline, summed over the valid images."""
  return network.eval_sums(predict, state, batch)


def validate(config):
  """The model and loss fields of a regression run (one sentence per problem)."""
  network.validate(config)
  for field in ('loss.weights', 'loss.switch_weights'):
    for name, weight in validation.get_field(config, field).items():
      if name not in losses.PIXEL_LOSSES or weight < 0:
        raise validation.ConfigError(
            f'config.{field}.{name}={weight!r} is not allowed; use non-negative weights for '
            f'{", ".join(losses.PIXEL_LOSSES)}.')
  if not any(validation.get_field(config, 'loss.weights').values()):
    raise validation.ConfigError(
        f'config.loss.weights={dict(config.loss.weights)!r} is not allowed; give at least one '
        f'positive weight among {", ".join(losses.PIXEL_LOSSES)}.')
  validation.check_number(config, 'loss.switch_step', low=0, integer=True)
  if config.loss.switch_step and not any(config.loss.switch_weights.values()):
    raise validation.ConfigError(
        f'config.loss.switch_weights={dict(config.loss.switch_weights)!r} is not allowed with '
        f'loss.switch_step={config.loss.switch_step}; give at least one positive weight among '
        f'{", ".join(losses.PIXEL_LOSSES)}, or loss.switch_step=0.')
