"""The VGG16-GAN's networks: a VGG16-encoder generator and a VGG16 discriminator.

Both stack VGG16's five blocks (under the params key 'vgg'), each ``convs_per_block`` 3x3
convs (named as Keras names VGG16's, so its weights load into them) each followed by the norm
and LeakyReLU(0.2), then 2x2 max pooling. The generator sees the gray picture of L as VGG16
expects it (``vgg.gray_input``) and decodes back to the input size U-Net style (2x up-sampling,
norm, ReLU, the block's pre-pooling features joined, convs). The discriminator pools block5 once
more (512 x H/64 x W/64), flattens it into Dense-norm-LeakyReLU-Dropout units and ends in one
logit per image (D's probability is its sigmoid).
"""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from colorjax.models import convs, head, layers, vgg

ENCODER = 'vgg'   # the params key of the VGG16 blocks (Keras's layer names inside)
VGG16_WIDTHS = tuple(features for features, _ in vgg.BLOCKS)
PRESETS = {'vgg16': dict(features=VGG16_WIDTHS, convs_per_block=2, norm='batch',
                         upsample='subpixel', output_activation='tanh')}


class VGGBlocks(nn.Module):
  """VGG16's five blocks with a norm after every conv: (each block's output before its max
  pooling, the pooled output of the last)."""
  features: Sequence[int] = VGG16_WIDTHS
  convs_per_block: int = 2
  norm: str = 'batch'
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train=False):
    act = layers.activation('leaky_relu')
    skips = []
    for block, width in enumerate(self.features, 1):
      for i in range(1, self.convs_per_block + 1):
        x = convs.Conv(width, (3, 3), dtype=self.dtype, name=f'block{block}_conv{i}')(x)
        x = act(layers.norm(self.norm, train, self.dtype)(x))
      skips.append(x)
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
    return skips, x


class VGGGenerator(nn.Module):
  """L [N, H, W, 1] in [-1, 1] -> ``out_channels`` maps, or [L, those] with ``join_l``."""
  features: Sequence[int] = VGG16_WIDTHS
  convs_per_block: int = 2
  norm: str = 'batch'
  upsample: str = 'subpixel'
  out_channels: int = 2
  output_activation: str = 'tanh'
  join_l: bool = False
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, L, train=False):
    x = vgg.gray_input(L.astype(jnp.float32)).astype(self.dtype)
    skips, x = VGGBlocks(self.features, self.convs_per_block, self.norm, self.dtype,
                         name=ENCODER)(x, train)
    for width, skip in zip(reversed(self.features), reversed(skips)):
      x = layers.Upsample2x(width, self.upsample, self.dtype)(x)
      x = nn.relu(layers.norm(self.norm, train, self.dtype)(x))
      x = convs.concat_channels([x, skip])
      for _ in range(self.convs_per_block):
        x = layers.conv_norm_act(x, width, norm_kind=self.norm, act=nn.relu, train=train,
                                 dtype=self.dtype)
    return head.output_head(self, x, L)


class VGGDiscriminator(nn.Module):
  """Images [N, H, W, C] -> logits [N, 1] (float32); H and W multiples of 64."""
  features: Sequence[int] = VGG16_WIDTHS
  convs_per_block: int = 2
  head: Sequence[int] = (1024, 512)
  dropout: float = 0.5
  norm: str = 'batch'
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train=False):
    _, x = VGGBlocks(self.features, self.convs_per_block, self.norm, self.dtype,
                     name=ENCODER)(x.astype(self.dtype), train)
    x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = x.reshape(x.shape[0], -1)
    for units in self.head:
      x = nn.Dense(units, use_bias=self.norm == 'none', dtype=self.dtype)(x)
      x = layers.activation('leaky_relu')(layers.norm(self.norm, train, self.dtype)(x))
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return nn.Dense(1, dtype=self.dtype)(x).astype(jnp.float32)


def from_config(model_config, dtype, **fixed):
  """The generator a config names: ``model.preset`` with any ``model.FIELD`` that is set, then
  ``fixed`` (the task's head)."""
  return layers.from_preset(VGGGenerator, PRESETS[model_config.preset], model_config,
                            dtype=dtype, **fixed)


def total_stride(model):
  return 2 ** len(model.features)


def discriminator_stride(model):
  return 2 ** (len(model.features) + 1)
