"""pix2pix's PatchGAN discriminator: one real/fake logit per overlapping image patch.

``n_layers`` stride-2 4x4 convs (the first without a norm), a stride-1 4x4 conv and a 4x4
conv to one channel, LeakyReLU(0.2) between; padding 1 throughout. With ``n_layers=3`` each
output logit sees a 70x70 patch of the input.
"""
import flax.linen as nn
import jax.numpy as jnp

from colorjax.models import convs, layers

MAX_WIDTH_MULTIPLE = 8


class PatchGAN(nn.Module):
  """Images [N, H, W, C] -> logits [N, h, w, 1] (float32)."""
  features: int = 64
  n_layers: int = 3
  norm: str = 'batch'
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train=False):
    act = layers.activation('leaky_relu')
    pad = ((1, 1), (1, 1))
    x = x.astype(self.dtype)
    for layer in range(self.n_layers + 1):
      width = self.features * min(2 ** layer, MAX_WIDTH_MULTIPLE)
      strides = 2 if layer < self.n_layers else 1
      use_norm = layer > 0 and self.norm != 'none'
      x = convs.Conv(width, (4, 4), strides=(strides, strides), padding=pad,
                     use_bias=not use_norm, dtype=self.dtype)(x)
      if use_norm:
        x = layers.norm(self.norm, train, self.dtype)(x)
      x = act(x)
    return convs.Conv(1, (4, 4), padding=pad, dtype=self.dtype)(x).astype(jnp.float32)


def receptive_field(n_layers):
  """Input pixels one output logit sees (70 for n_layers=3)."""
  field = 4 + 3                 # the last conv and the stride-1 conv before it
  for _ in range(n_layers):
    field = 2 * field + 2         # a stride-2 4x4 conv
  return field


def min_size(n_layers):
  """The smallest input side that leaves at least one logit: each stride-2 conv floors the
  side to half, and the two stride-1 4x4 convs take one pixel each."""
  return 3 * 2 ** n_layers
