"""The convolutions of every colorjax network, as Flax layers with ``nn.Conv``'s and
``nn.ConvTranspose``'s parameters.

Where a program is lowered for a GPU or TPU they are the plain XLA ops
(``lax.conv_general_dilated``, ``lax.conv_transpose``, ``jnp.concatenate``); where it is lowered
for the CPU, the same functions in the forms XLA:CPU runs fastest (``cpu_convs``). The choice
follows the platform being lowered for (``jax.lax.platform_dependent``), not the machine that
traces: a step traced on a CPU host and exported for CUDA holds the plain ops, and a file from
``colorjax export`` carries each platform's own program. Converters that read the traced
program instead of lowering it (ONNX) trace it under ``plain_ops()``.
"""
import contextlib
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from colorjax.models import cpu_convs
from colorjax.models.pixels import reflect_pad

_NHWC = ('NHWC', 'HWIO', 'NHWC')
_plain_only = False


@contextlib.contextmanager
def plain_ops():
  """Within the block, networks trace the plain XLA ops only, with no platform choice in the
  program (``platform_dependent`` is an XLA lowering rule that other converters lack)."""
  global _plain_only
  before, _plain_only = _plain_only, True
  try:
    yield
  finally:
    _plain_only = before


def _by_platform(cpu, plain, *args):
  """``cpu(*args)`` in a program lowered for the CPU, ``plain(*args)`` on any other platform
  (and under ``plain_ops``)."""
  if _plain_only:
    return plain(*args)
  return jax.lax.platform_dependent(*args, cpu=cpu, default=plain)


def conv_general_dilated(lhs, rhs, *args, **kwargs):
  """``lax.conv_general_dilated``; on the CPU, ``cpu_convs.conv_general_dilated``."""
  return _by_platform(lambda x, k: cpu_convs.conv_general_dilated(x, k, *args, **kwargs),
                      lambda x, k: jax.lax.conv_general_dilated(x, k, *args, **kwargs), lhs, rhs)


def reflect_padded_conv(lhs, rhs, window_strides, padding, dimension_numbers=None, **kwargs):
  """An ``nn.Conv`` ``conv_general_dilated`` that reads its ((p, p), (p, p)) ``padding`` (odd
  k x k kernel, p = k // 2, stride 1) as reflection padding: the reflection-padded input's VALID
  conv; on the CPU, ``cpu_convs.reflect_padded_conv``."""
  k, p = rhs.shape[0], rhs.shape[0] // 2
  if (tuple(window_strides) != (1, 1) or rhs.shape[1] != k or k % 2 == 0
      or tuple(map(tuple, padding)) != ((p, p), (p, p))
      or any(kwargs.get(name) not in (None, 1, (1, 1)) for name in (
          'lhs_dilation', 'rhs_dilation', 'feature_group_count', 'batch_group_count'))):
    raise ValueError('reflect_padded_conv takes a stride-1 odd square kernel with k // 2 '
                     'padding on each side.')
  precision = kwargs.get('precision')
  return _by_platform(
      lambda x, w: cpu_convs.reflect_padded_conv(x, w, dimension_numbers, precision),
      lambda x, w: jax.lax.conv_general_dilated(
          reflect_pad(x, p), w, (1, 1), 'VALID', dimension_numbers=dimension_numbers,
          precision=precision), lhs, rhs)


def concat_channels(parts):
  """``jnp.concatenate(parts, axis=-1)``; on the CPU, ``cpu_convs.concat_channels``."""
  return _by_platform(cpu_convs.concat_channels, lambda ps: jnp.concatenate(ps, axis=-1),
                      list(parts))


# nn.Conv (same params and names): every network's conv.
Conv = functools.partial(nn.Conv, conv_general_dilated=conv_general_dilated)

# nn.Conv (same params and names) with reflection padding: pass padding ((p, p), (p, p)).
ReflectPaddedConv = functools.partial(nn.Conv, conv_general_dilated=reflect_padded_conv)


class ConvTranspose2x(nn.Module):
  """``nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding='SAME')``, with its
  parameters (a [4, 4, C, F] kernel and a bias: checkpoints are interchangeable) and its
  ``lax.conv_transpose``; on the CPU, ``cpu_convs.conv_transpose_2x``."""
  features: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (4, 4, x.shape[-1], self.features))
    bias = self.param('bias', nn.initializers.zeros_init(), (self.features,))
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    y = _by_platform(lambda x, k: cpu_convs.conv_transpose_2x(x, k, None),
                     lambda x, k: jax.lax.conv_transpose(x, k, (2, 2), 'SAME',
                                                         dimension_numbers=_NHWC), x, kernel)
    return y + bias
