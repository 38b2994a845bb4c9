"""The network of the per-pixel tasks (regression, classification, and the GANs' generators):
L in, one map per pixel out.

``config.model.name`` picks the U-Net, the fusion CNN, the VGG16-encoder U-Net or the ResNet
generator; the task fixes its head (channels, output activation). This module builds it, puts
pretrained VGG16 weights into it at init, keeps a frozen VGG16 branch out of the optimiser (no
Adam moments) and runs one gradient step.
"""
import os

import jax
import jax.numpy as jnp
import optax
from absl import logging

from colorjax.core import color, metrics, optim, trees, validation
from colorjax.models import fusion, head, keras_weights, layers, resnet, unet, vgg, vgg_gan
from colorjax.tasks.inputs import rgb_and_lab
from colorjax.tasks.state import TrainState

NETWORKS = {'unet': unet, 'fusion': fusion, 'vgg': vgg_gan, 'resnet': resnet}
VGG_BRANCHES = {'fusion': fusion.VGG_BRANCH, 'vgg': vgg_gan.ENCODER}  # Keras VGG16 weights go here


def network_name(config):
  """config.model.name ('unet' in the config.json of runs from before it existed)."""
  return config.model.get('name', 'unet')


def build(config, **head):
  """The network ``config.model`` names, with the task's ``head`` fields."""
  module = NETWORKS[network_name(config)]
  return module.from_config(config.model, jnp.dtype(config.compute_dtype), **head)


def frozen_branches(config):
  """Top-level params keys the optimiser leaves alone."""
  if network_name(config) == 'fusion' and not config.model.vgg_trainable:
    return (fusion.VGG_BRANCH,)
  return ()


def optimizer(config):
  """Adam over the trainable params; frozen branches get no updates and no optimiser state."""
  tx = optim.adam(config.optim, config.num_steps)
  frozen = frozen_branches(config)
  if not frozen:
    return tx
  labels = lambda params: {k: jax.tree.map(lambda _: 'frozen' if k in frozen else 'train', v)
                           for k, v in params.items()}
  return optax.multi_transform({'train': tx, 'frozen': optax.set_to_zero()}, labels)


def pretrained(config):
  """{branch: VGG16 params} for a network with a VGG16 branch (fusion, vgg), read on the host
  from config.model.vgg_weights or the Keras cache; None (with one warning) when neither has the
  file, or for a network without one."""
  name = network_name(config)
  if name not in VGG_BRANCHES:
    return None
  top = name == 'fusion' and config.model.vgg_features == 'fc2'
  filename = keras_weights.VGG16_TOP if top else keras_weights.VGG16_NOTOP
  try:
    path = keras_weights.find_weights(filename, config.model.vgg_weights,
                                      setting='config.model.vgg_weights')
  except validation.UserError:
    if config.model.vgg_weights:
      raise
    logging.warning('config.model.vgg_weights is empty and %s is not in %s, so the VGG16 branch '
                    'starts from random weights.', filename, keras_weights.cache_dir())
    return None
  return {VGG_BRANCHES[name]: vgg.load_params(path, include_top=top)}


def with_pretrained(params, weights):
  """``params`` with the ``weights`` from ``pretrained`` (or None) put in at the same paths (the
  file may hold more layers than the network uses, and the network layers the file lacks);
  one sentence naming the first layer of another shape."""
  try:
    return trees.overlay(params, weights or {})
  except trees.Misfit as e:
    raise validation.UserError(
        f'config.model.vgg_weights does not fit this network: {e.where} has shape {e.found} in '
        f'the file and {e.expected} here (keep the VGG16 widths to load its weights).') from None


def init_params(rng, model, inputs, weights=None):
  """(params, batch_stats) of ``model`` for ``inputs`` with ``weights`` overlaid."""
  params_rng, dropout_rng = jax.random.split(rng)
  variables = model.init({'params': params_rng, 'dropout': dropout_rng}, inputs, train=False)
  return with_pretrained(dict(variables['params']), weights), variables.get('batch_stats', {})


def init(rng, config, image_shape, model, weights=None):
  """A fresh TrainState of ``model`` for images of ``image_shape`` (H, W); ``weights``
  ({branch: params}, from ``pretrained``) replace the random params they have."""
  init_rng, rng = jax.random.split(rng)
  params, batch_stats = init_params(init_rng, model, jnp.zeros((1, *image_shape, 1)), weights)
  tx = optimizer(config)
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
                    opt_state=tx.init(params), rng=rng, model=model, tx=tx, config=config)


def train_step(state, L, loss_fn):
  """One Adam step on ``loss_fn(network output) -> (loss, {name: term})`` for L in Lab units;
  returns (state, {'loss', the terms, 'grad_norm'})."""
  dropout_rng = jax.random.fold_in(state.rng, state.step)

  def objective(params):
    output, updates = state.model.apply(
        {'params': params, 'batch_stats': state.batch_stats}, color.normalize_l(L), train=True,
        mutable=['batch_stats'], rngs={'dropout': dropout_rng})
    loss, terms = loss_fn(output)
    return loss, (terms, updates)

  (loss, (terms, updates)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
  param_updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
  state = state.replace(step=state.step + 1,
                        params=optax.apply_updates(state.params, param_updates),
                        batch_stats=updates.get('batch_stats', state.batch_stats),
                        opt_state=opt_state)
  return state, {'loss': loss, **terms, 'grad_norm': optax.global_norm(grads)}


def apply(state, L):
  """The network's output (inference mode) for L in Lab units [N, H, W, 1]."""
  return state.model.apply(state.variables(), color.normalize_l(L), train=False)


def eval_sums(predict, state, batch):
  """A task's eval step: metrics.eval_sums of ``predict(state, L)`` on an eval batch."""
  rgb, lab = rgb_and_lab(batch)
  return metrics.eval_sums(predict(state, color.split_lab(lab)[0]), lab, rgb, batch['mask'])


def total_stride(config):
  """Image sides must be multiples of this."""
  return NETWORKS[network_name(config)].total_stride(build(config))


def validate(config, head_fields=()):
  """The model fields (one sentence per problem). ``head_fields`` are fields the task sets
  itself: set in the config to another value, they are refused."""
  validation.check_choice(config, 'model.name', tuple(NETWORKS))
  name = config.model.name
  validation.check_choice(config, 'model.preset', tuple(NETWORKS[name].PRESETS))
  for field, allowed in (('norm', layers.NORMS), ('activation', layers.ACTIVATIONS),
                         ('upsample', layers.UPSAMPLES),
                         ('output_activation', head.OUTPUT_ACTIVATIONS)):
    if validation.get_field(config, f'model.{field}') is not None:
      validation.check_choice(config, f'model.{field}', allowed)
  for field, value in head_fields:
    given = validation.get_field(config, f'model.{field}')
    if given not in (None, value):
      raise validation.ConfigError(
          f'config.model.{field}={given!r} is not allowed; task {config.task!r} sets it to '
          f'{value!r}, so leave it unset.')
  for field, low in (('width', 1), ('blocks', 0)):
    if validation.get_field(config, f'model.{field}') is not None:
      validation.check_number(config, f'model.{field}', low=low, integer=True)
  _validate_network(config, build(config))
  stride = total_stride(config)
  if config.image_size % stride:
    raise validation.ConfigError(
        f'config.image_size={config.image_size} is not allowed; this network has a total '
        f'stride of {stride}, so use a multiple of {stride}.')


def _validate_network(config, model):
  """The fields of the network ``config.model.name`` builds (``model``)."""
  if isinstance(model, (unet.UNet, vgg_gan.VGGGenerator)):
    if not model.features or any(f < 1 for f in model.features):
      raise validation.ConfigError(f'config.model.features={model.features!r} is not allowed; '
                                   'use positive channel counts, one per level.')
  if isinstance(model, unet.UNet) and not 0 <= model.dropout < 1:
    raise validation.ConfigError(f'config.model.dropout={model.dropout!r} is not allowed; use a '
                                 'rate in [0, 1).')
  if network_name(config) == 'fusion':
    validation.check_choice(config, 'model.vgg_features', fusion.VGG_FEATURES)
    validation.check_choice(config, 'model.vgg_trainable', (False, True))
    if validation.get_field(config, 'model.fusion_features') is not None:
      validation.check_number(config, 'model.fusion_features', low=1, integer=True)
  if network_name(config) in VGG_BRANCHES:
    weights = validation.get_field(config, 'model.vgg_weights')
    if not isinstance(weights, str) or (weights and not os.path.isfile(weights)):
      raise validation.ConfigError(
          f'config.model.vgg_weights={weights!r} is not allowed; use the path of a Keras VGG16 '
          f'.h5 file ({keras_weights.VGG16_NOTOP}, or {keras_weights.VGG16_TOP} with '
          "vgg_features='fc2'), or '' for the Keras cache.")
