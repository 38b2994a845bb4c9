"""Building blocks shared by the networks: normalisation, activation, 2x up-sampling."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

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


def depth_to_space(x, block=2):
  """[N, H, W, C·b²] -> [N, H·b, W·b, C] (sub-pixel shuffle)."""
  n, h, w, c = x.shape
  x = x.reshape(n, h, w, block, block, c // block ** 2)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(n, h * block, w * block, c // block ** 2)


class Upsample2x(nn.Module):
  """Doubles H and W while mapping to ``features`` channels.

  'transpose': a stride-2 4x4 transposed conv; 'subpixel': a 3x3 conv to 4x the channels then
  depth-to-space (the same function class, and much faster weight gradients on CPU);
  'resize': nearest-neighbour doubling then a 3x3 conv.
  """
  features: int
  method: str = 'subpixel'
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    if self.method == 'transpose':
      return nn.ConvTranspose(self.features, (4, 4), strides=(2, 2), padding='SAME',
                              dtype=self.dtype)(x)
    if self.method == 'subpixel':
      return depth_to_space(nn.Conv(4 * self.features, (3, 3), dtype=self.dtype)(x))
    n, h, w, c = x.shape
    x = jax.image.resize(x, (n, 2 * h, 2 * w, c), method='nearest')
    return nn.Conv(self.features, (3, 3), dtype=self.dtype)(x)
