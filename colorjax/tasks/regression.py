"""Regression colorization: a network maps L to ab, trained with L1 / L2 / SSIM losses."""
import jax
import jax.numpy as jnp
import optax

from colorjax import color, losses, metrics, optim, validation
from colorjax.models import layers, unet
from colorjax.tasks.inputs import rgb_and_lab
from colorjax.tasks.state import TrainState


def build_model(config):
  return unet.from_config(config.model, jnp.dtype(config.compute_dtype))


def init(rng, config, image_shape):
  """A fresh TrainState for images of ``image_shape`` (H, W)."""
  model = build_model(config)
  params_rng, dropout_rng, rng = jax.random.split(rng, 3)
  L = jnp.zeros((1, *image_shape, 1), jnp.float32)
  variables = model.init({'params': params_rng, 'dropout': dropout_rng}, L, train=False)
  tx = optim.adam(config.optim, config.num_steps)
  params = variables['params']
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    batch_stats=variables.get('batch_stats', {}), opt_state=tx.init(params),
                    rng=rng, model=model, tx=tx, config=config)


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
  dropout_rng = jax.random.fold_in(state.rng, state.step)

  def loss_fn(params):
    output, updates = state.model.apply(
        {'params': params, 'batch_stats': state.batch_stats}, color.normalize_l(L), train=True,
        mutable=['batch_stats'], rngs={'dropout': dropout_rng})
    terms = _loss_terms(output_to_ab(output, state.model), target, L, rgb, weights)
    return losses.weighted_sum(terms, weights), (terms, updates)

  (loss, (terms, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  param_updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
  state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params,
                                                                        param_updates),
                        batch_stats=updates.get('batch_stats', state.batch_stats),
                        opt_state=opt_state)
  return state, {'loss': loss, **terms, 'grad_norm': optax.global_norm(grads)}


def predict(state, L):
  """L in Lab units [N, H, W, 1] -> predicted ab in Lab units."""
  output = state.model.apply(state.variables(), color.normalize_l(L), train=False)
  return color.denormalize_ab(output_to_ab(output, state.model))


def eval_step(state, batch):
  """Metrics of the prediction and the no-colour baseline, summed over the valid images."""
  rgb, lab = rgb_and_lab(batch)
  return metrics.eval_sums(predict(state, color.split_lab(lab)[0]), lab, rgb, batch['mask'])


def total_stride(config):
  """Image sides must be multiples of this."""
  model = build_model(config)
  return 2 ** (len(model.features) - (0 if model.strided_stem else 1))


def validate(config):
  """The model and loss fields of a regression run (one sentence per problem)."""
  validation.check_choice(config, 'model.preset', tuple(unet.PRESETS))
  for field, allowed in (('norm', layers.NORMS), ('activation', layers.ACTIVATIONS),
                         ('upsample', layers.UPSAMPLES),
                         ('output_activation', unet.OUTPUT_ACTIVATIONS)):
    if validation.get_field(config, f'model.{field}') is not None:
      validation.check_choice(config, f'model.{field}', allowed)
  model = build_model(config)
  if not model.features or any(f < 1 for f in model.features):
    raise validation.ConfigError(f'config.model.features={model.features!r} is not allowed; '
                                 'use positive channel counts, one per level.')
  stride = total_stride(config)
  if config.image_size % stride:
    raise validation.ConfigError(
        f'config.image_size={config.image_size} is not allowed; this U-Net has a total stride '
        f'of {stride}, so use a multiple of {stride}.')
  for field in ('loss.weights', 'loss.switch_weights'):
    for name, weight in validation.get_field(config, field).items():
      if name not in losses.PIXEL_LOSSES or weight < 0:
        raise validation.ConfigError(
            f'config.{field}.{name}={weight!r} is not allowed; use non-negative weights for '
            f'{", ".join(losses.PIXEL_LOSSES)}.')
  validation.check_number(config, 'loss.switch_step', low=0, integer=True)
  validation.check_choice(config, 'best_metric', tuple(metrics.RANKING))
