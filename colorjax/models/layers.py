"""Building blocks shared by the networks: normalisation, activation, conv blocks, 2x
up-sampling, output heads, and networks built from presets."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

NORMS = ('batch', 'instance', 'none')
ACTIVATIONS = ('relu', 'leaky_relu')
UPSAMPLES = ('transpose', 'subpixel', 'resize')
OUTPUT_ACTIVATIONS = ('tanh', 'sigmoid', 'none')


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
  x = nn.Conv(features, (kernel, kernel), strides=(strides, strides), padding='SAME',
              use_bias=norm_kind == 'none' or not use_norm, dtype=dtype)(x)
  if use_norm:
    x = norm(norm_kind, train, dtype)(x)
  return act(x)


def output_activation(x, kind):
  """'tanh' (about [-1, 1]), 'sigmoid' ([0, 1]) or 'none' (logits)."""
  if kind == 'tanh':
    return jnp.tanh(x)
  if kind == 'sigmoid':
    return nn.sigmoid(x)
  return x


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


def depth_to_space(x, block=2):
  """[N, H, W, C·b²] -> [N, H·b, W·b, C] (sub-pixel shuffle)."""
  n, h, w, c = x.shape
  x = x.reshape(n, h, w, block, block, c // block ** 2)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(n, h * block, w * block, c // block ** 2)


class ConvTranspose2x(nn.Module):
  """A 4x4 stride-2 'SAME' transposed conv with ``nn.ConvTranspose``'s parameters (a [4, 4, C,
  F] kernel and a bias, so checkpoints are interchangeable), computed as four 2x2 convs.

  Output pixel (2i + r, 2j + s) only meets the kernel taps of its phase (r, s): rows r and r + 2,
  columns s and s + 2, over inputs (i - 1, i) for r = 0 and (i, i + 1) for r = 1. Each phase is
  an ordinary stride-1 conv of the input; the four are interleaved by depth-to-space. Same
  FLOPs as the transposed conv, but its weight gradient is an ordinary conv's, which XLA's CPU
  backend computes 10-15x faster than that of ``lax.conv_transpose``.
  """
  features: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (4, 4, x.shape[-1], self.features))
    bias = self.param('bias', nn.initializers.zeros_init(), (self.features,))
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    pads = {0: (1, 0), 1: (0, 1)}
    phases = [jax.lax.conv_general_dilated(x, kernel[r::2, s::2], (1, 1), (pads[r], pads[s]),
                                           dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
              for r in (0, 1) for s in (0, 1)]
    return depth_to_space(jnp.concatenate(phases, axis=-1)) + bias


class Upsample2x(nn.Module):
  """Doubles H and W while mapping to ``features`` channels.

  'transpose': a stride-2 4x4 transposed conv (``ConvTranspose2x``); 'subpixel': a 3x3 conv to
  4x the channels then depth-to-space (a superset of the same function class);
  'resize': nearest-neighbour doubling then a 3x3 conv.
  """
  features: int
  method: str = 'subpixel'
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    if self.method == 'transpose':
      # Named as the nn.ConvTranspose it replaced, so older checkpoints still load.
      return ConvTranspose2x(self.features, dtype=self.dtype, name='ConvTranspose_0')(x)
    if self.method == 'subpixel':
      return depth_to_space(nn.Conv(4 * self.features, (3, 3), dtype=self.dtype)(x))
    n, h, w, c = x.shape
    x = jax.image.resize(x, (n, 2 * h, 2 * w, c), method='nearest')
    return nn.Conv(self.features, (3, 3), dtype=self.dtype)(x)
