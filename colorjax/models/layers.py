"""Building blocks shared by the networks: normalisation, activation, conv blocks, 2x
up-sampling, and networks built from presets (the conv formulations themselves are in
convs.py, the output head in head.py)."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from colorjax.models import convs, pixels

NORMS = ('batch', 'instance', 'none')
ACTIVATIONS = ('relu', 'leaky_relu')
UPSAMPLES = ('transpose', 'subpixel', 'resize')


def norm(kind, train, dtype):
  """A normalisation layer by name (batch statistics are global under jit's sharding)."""
  if kind == 'batch':
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=dtype)
  if kind == 'instance':
    return nn.InstanceNorm(dtype=dtype)
  return lambda x: x


def activation(kind):
  return nn.relu if kind == 'relu' else functools.partial(nn.leaky_relu, negative_slope=0.2)


def conv_norm_act(x, features, *, norm_kind, act, train, dtype, kernel=3, strides=1,
                  use_norm=True):
  """Conv (no bias before a norm), then the norm, then ``act``; call inside a compact module."""
  x = convs.Conv(features, (kernel, kernel), strides=(strides, strides), padding='SAME',
                 use_bias=norm_kind == 'none' or not use_norm, dtype=dtype)(x)
  if use_norm:
    x = norm(norm_kind, train, dtype)(x)
  return act(x)


def from_preset(module, preset, model_config, **fixed):
  """``module`` with the fields of ``preset``, overridden by every field of ``model_config`` that
  the module has and that is set (not None), then by ``fixed``. Sequences become tuples (module
  fields must be hashable; a config read back from JSON holds lists)."""
  fields = dict(preset)
  for name in module.__dataclass_fields__:
    if name not in ('parent', 'name') and model_config.get(name) is not None:
      fields[name] = _tuples(model_config[name])
  return module(**{**fields, **fixed})


def _tuples(value):
  return tuple(map(_tuples, value)) if isinstance(value, (list, tuple)) else value


class Upsample2x(nn.Module):
  """Doubles H and W while mapping to ``features`` channels.

  'transpose': a stride-2 4x4 transposed conv (``convs.ConvTranspose2x``); 'subpixel': a 3x3
  conv to 4x the channels then depth-to-space (a superset of the same function class);
  'resize': nearest-neighbour doubling then a 3x3 conv.
  """
  features: int
  method: str = 'subpixel'
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    if self.method == 'transpose':
      # Named as the nn.ConvTranspose it replaced, so older checkpoints still load.
      return convs.ConvTranspose2x(self.features, dtype=self.dtype,
                                  name='ConvTranspose_0')(x)
    if self.method == 'subpixel':
      return pixels.depth_to_space(convs.Conv(4 * self.features, (3, 3), dtype=self.dtype)(x))
    n, h, w, c = x.shape
    x = jax.image.resize(x, (n, 2 * h, 2 * w, c), method='nearest')
    return convs.Conv(self.features, (3, 3), dtype=self.dtype)(x)
