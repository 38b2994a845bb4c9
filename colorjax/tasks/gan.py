"""What the GAN tasks share: two groups of networks, 'generator' and 'discriminator', each with
its own Adam; networks applied in training mode and one group updated at a time inside one
jitted step; the discriminator a config names; the ``config.gan`` fields every GAN reads.

A GAN's TrainState nests params, batch stats and networks by group: ``params['generator']``
is the generator's params (paired GANs) or {name: params} of several (CycleGAN's 'ab', 'ba').
"""
import flax
import jax
import jax.numpy as jnp
import optax

from colorjax.core import losses, optim, validation
from colorjax.models import layers, patchgan, vgg_gan
from colorjax.tasks import network
from colorjax.tasks.state import TrainState

GROUPS = ('generator', 'discriminator')
DISCRIMINATORS = ('patchgan', 'vgg')
INIT_FROM_BRANCH = 'generator'   # config.init_from with a regression run fills this group


def build_discriminator(config):
  """The discriminator ``config.gan`` names: a PatchGAN, or the VGG16 discriminator with its
  widths scaled by d_features / 64."""
  gan, dtype = config.gan, jnp.dtype(config.compute_dtype)
  if gan.discriminator == 'vgg':
    widths = tuple(max(1, width * gan.d_features // 64) for width in vgg_gan.VGG16_WIDTHS)
    return vgg_gan.VGGDiscriminator(features=widths, head=tuple(gan.d_head),
                                    dropout=gan.d_dropout, norm=gan.d_norm, dtype=dtype)
  return patchgan.PatchGAN(features=gan.d_features, n_layers=gan.d_layers, norm=gan.d_norm,
                           dtype=dtype)


def _put(tree, path, value):
  for key in path[:-1]:
    tree = tree.setdefault(key, {})
  tree[path[-1]] = value


def init(rng, config, networks, weights=None, extra=None):
  """A TrainState of ``networks`` ({path: (module, example input)}, a path being (group,) or
  (group, name)); ``weights`` (nested like the params) replace the random params they have."""
  params, batch_stats, models = {}, {}, {}
  for i, (path, (module, inputs)) in enumerate(sorted(networks.items())):
    network_params, stats = network.init_params(jax.random.fold_in(rng, i), module, inputs)
    _put(params, path, network_params)
    _put(batch_stats, path, stats)
    _put(models, path, module)
  params = network.with_pretrained(params, weights)
  tx = {group: optim.adam(config.optim, config.num_steps) for group in GROUPS}
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
                    opt_state={group: tx[group].init(params[group]) for group in GROUPS},
                    rng=jax.random.fold_in(rng, len(networks)), model=flax.core.freeze(models),
                    tx=flax.core.freeze(tx), config=config, extra=extra)


def forward(model, params, batch_stats, x, rng):
  """``model`` on x in training mode: (output, its batch stats after the call)."""
  output, updates = model.apply({'params': params, 'batch_stats': batch_stats}, x, train=True,
                                mutable=['batch_stats'], rngs={'dropout': rng})
  return output, updates.get('batch_stats', batch_stats)


def apply(model, state, path, x):
  """``model`` (the network at ``path`` of ``state``) on x in inference mode."""
  params, stats = state.params, state.batch_stats
  for key in path:
    params, stats = params[key], stats[key]
  return model.apply({'params': params, 'batch_stats': stats}, x, train=False)


def update(state, group, grads, batch_stats):
  """``state`` after one Adam step of ``group`` on ``grads``, with its new batch stats; the other
  group is untouched. Also returns the gradients' global norm."""
  updates, opt_state = state.tx[group].update(grads, state.opt_state[group], state.params[group])
  state = state.replace(
      params={**state.params, group: optax.apply_updates(state.params[group], updates)},
      opt_state={**state.opt_state, group: opt_state},
      batch_stats={**state.batch_stats, group: batch_stats})
  return state, optax.global_norm(grads)


def step_keys(state, count):
  """``count`` dropout keys for this step."""
  return jax.random.split(jax.random.fold_in(state.rng, state.step), count)


def discriminator_metrics(objective, real_logits, fake_logits, suffix=''):
  return {f'd_real{suffix}': losses.discriminator_output(objective, real_logits),
          f'd_fake{suffix}': losses.discriminator_output(objective, fake_logits)}


def validate(config):
  """The ``config.gan`` fields every GAN reads, and the image size its discriminator needs."""
  validation.check_choice(config, 'gan.objective', losses.GAN_OBJECTIVES)
  validation.check_number(config, 'gan.epsilon', low=0, high=1, high_open=True)
  validation.check_choice(config, 'gan.discriminator', DISCRIMINATORS)
  validation.check_number(config, 'gan.d_features', low=1, integer=True)
  validation.check_number(config, 'gan.d_layers', low=1, integer=True)
  validation.check_choice(config, 'gan.d_norm', layers.NORMS)
  validation.check_number(config, 'gan.d_dropout', low=0, high=1, high_open=True)
  head = validation.get_field(config, 'gan.d_head')
  if not (isinstance(head, (tuple, list))
          and all(isinstance(u, int) and not isinstance(u, bool) and u > 0 for u in head)):
    raise validation.ConfigError(f'config.gan.d_head={head!r} is not allowed; use a tuple of '
                                 'positive unit counts.')
  size = config.image_size
  if config.gan.discriminator == 'vgg':
    stride = vgg_gan.discriminator_stride(build_discriminator(config))
    if size % stride:
      raise validation.ConfigError(
          f'config.image_size={size} is not allowed with gan.discriminator=\'vgg\'; it pools '
          f'{len(vgg_gan.VGG16_WIDTHS) + 1} times, so use a multiple of {stride}.')
  elif size < patchgan.min_size(config.gan.d_layers):
    raise validation.ConfigError(
        f'config.image_size={size} is not allowed with gan.d_layers={config.gan.d_layers}; '
        f'the PatchGAN needs at least {patchgan.min_size(config.gan.d_layers)} pixels.')
