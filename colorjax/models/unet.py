"""One configurable U-Net for regression colorization (L in, ab out).

Each encoder level halves the resolution with a strided conv (the first level only when
``strided_stem``), then applies ``convs_per_level`` 3x3 conv-norm-activation layers; the decoder
mirrors it with 2x up-sampling and skip concatenations.
"""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from colorjax.models import convs, head, layers

PRESETS = {
    # The portrait U-Net: 128² in, five levels down to 8x8x512, batch norm and ReLU after every
    # conv, sigmoid output, L joined to the two predicted channels.
    'portrait': dict(features=(64, 128, 256, 512, 512), convs_per_level=2, strided_stem=False,
                     down_kernel=3, norm='batch', activation='relu', upsample='subpixel',
                     dropout=0.0, dropout_levels=0, output_activation='sigmoid', join_l=True),
    # pix2pix's U-Net-256: eight stride-2 4x4 levels (ngf 64) to 1x1 at 256², LeakyReLU down,
    # ReLU up, dropout 0.5 in the three innermost decoder blocks, tanh output.
    'pix2pix': dict(features=(64, 128, 256, 512, 512, 512, 512, 512), convs_per_level=0,
                    strided_stem=True, down_kernel=4, norm='batch', activation='leaky_relu',
                    upsample='transpose', dropout=0.5, dropout_levels=3,
                    output_activation='tanh', join_l=False),
}


class UNet(nn.Module):
  """L [N, H, W, 1] in [-1, 1] -> ``out_channels`` maps, or [L, those] with ``join_l``."""
  features: Sequence[int] = PRESETS['portrait']['features']
  convs_per_level: int = 2
  strided_stem: bool = False
  down_kernel: int = 3
  norm: str = 'batch'
  activation: str = 'relu'
  upsample: str = 'subpixel'
  dropout: float = 0.0
  dropout_levels: int = 0           # innermost decoder levels that apply dropout
  out_channels: int = 2
  output_activation: str = 'tanh'
  join_l: bool = False
  dtype: jnp.dtype = jnp.float32

  def _conv_norm_act(self, x, features, train, kernel=3, strides=1, act=None, use_norm=True):
    return layers.conv_norm_act(x, features, norm_kind=self.norm,
                                act=act or layers.activation(self.activation), train=train,
                                dtype=self.dtype, kernel=kernel, strides=strides,
                                use_norm=use_norm)

  @nn.compact
  def __call__(self, L, train=False):
    x = L.astype(self.dtype)
    skips = []
    for level, features in enumerate(self.features):
      if level > 0 or self.strided_stem:
        x = self._conv_norm_act(x, features, train, kernel=self.down_kernel, strides=2,
                                use_norm=level > 0)
      else:
        x = self._conv_norm_act(x, features, train)
      for _ in range(self.convs_per_level):
        x = self._conv_norm_act(x, features, train)
      skips.append(x)
    for level in reversed(range(len(self.features) - 1)):
      features = self.features[level]
      x = layers.Upsample2x(features, self.upsample, self.dtype)(x)
      x = nn.relu(layers.norm(self.norm, train, self.dtype)(x))
      if len(self.features) - 1 - level <= self.dropout_levels and self.dropout > 0:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
      x = convs.concat_channels([x, skips[level]])
      for _ in range(self.convs_per_level):
        x = self._conv_norm_act(x, features, train, act=nn.relu)
    if self.strided_stem:
      x = nn.relu(layers.Upsample2x(self.features[0], self.upsample, self.dtype)(x))
    return head.output_head(self, x, L)


def from_config(model_config, dtype, **fixed):
  """The U-Net a config names: ``model.preset`` with any ``model.FIELD`` that is set, then
  ``fixed`` (the task's head: out_channels, output_activation, join_l)."""
  return layers.from_preset(UNet, PRESETS[model_config.preset], model_config, dtype=dtype,
                            **fixed)


def total_stride(model):
  """Image sides must be multiples of this."""
  return 2 ** (len(model.features) - (0 if model.strided_stem else 1))
