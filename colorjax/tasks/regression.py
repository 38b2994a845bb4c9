"""Regression colorization: a network maps L to ab, trained with L1 / L2 / SSIM losses."""
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


def _loss_terms(ab_norm, target_ab_norm, L, rgb, weights):
  terms = {}
  if 'l1' in weights:
    terms['l1'] = losses.l1(ab_norm, target_ab_norm)
  if 'l2' in weights:
    terms['l2'] = losses.l2(ab_norm, target_ab_norm)
  if 'ssim' in weights:
    predicted_rgb = color.join_l_ab(L, color.denormalize_ab(ab_norm))
    terms['ssim'] = losses.ssim_loss(predicted_rgb, rgb)
  return terms


def loss_weights(config, step):
  """The weights in force at ``step``: loss.weights, then loss.switch_weights from
  loss.switch_step on (when > 0). Every term either list names is returned."""
  names = sorted(set(config.loss.weights.keys()) | set(config.loss.switch_weights.keys()))
  before = {n: config.loss.weights.get(n, 0.0) for n in names}
  if config.loss.switch_step <= 0:
    return before
  after = {n: config.loss.switch_weights.get(n, 0.0) for n in names}
  switched = step >= config.loss.switch_step
  return {n: jnp.where(switched, after[n], before[n]) for n in names}


def train_step(state, batch):
  rgb, lab = rgb_and_lab(batch)
  L, ab = color.split_lab(lab)
  target = color.normalize_ab(ab)
  weights = loss_weights(state.config, state.step)

  def loss_fn(output):
    terms = _loss_terms(output_to_ab(output, state.model), target, L, rgb, weights)
    return losses.weighted_sum(terms, weights), terms

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
