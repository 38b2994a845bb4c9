"""The ResNet generator of CycleGAN (Johnson et al.'s architecture, as Zhu et al. use it).

A reflection-padded 7x7 conv, two stride-2 3x3 convs (x2, x4 the width), ``blocks`` residual
blocks of two reflection-padded 3x3 convs, two 2x up-samplings back to the input size and a
reflection-padded 7x7 conv to the output channels; each conv but the last is followed by the
norm (instance norm by default) and ReLU.
"""
import flax.linen as nn
import jax.numpy as jnp

from colorjax.models import convs, head, layers

PRESETS = {
    'resnet_9blocks': dict(width=64, blocks=9, norm='instance', upsample='transpose',
                           output_activation='tanh'),
    'resnet_6blocks': dict(width=64, blocks=6, norm='instance', upsample='transpose',
                           output_activation='tanh'),
}
DOWNSAMPLINGS = 2


class ResnetGenerator(nn.Module):
  """Images [N, H, W, C] -> ``out_channels`` maps, or [x, those] with ``join_l``."""
  width: int = 64                  # channels of the first conv (x2, x4 after each downsampling)
  blocks: int = 9
  norm: str = 'instance'
  upsample: str = 'transpose'
  out_channels: int = 2
  output_activation: str = 'tanh'
  join_l: bool = False
  dtype: jnp.dtype = jnp.float32

  def _conv(self, x, features, kernel, train, strides=1, reflect=False, act=True):
    pad = kernel // 2
    conv = convs.ReflectPaddedConv if reflect else convs.Conv
    x = conv(features, (kernel, kernel), strides=(strides, strides),
             padding=((pad, pad), (pad, pad)), use_bias=self.norm == 'none', dtype=self.dtype)(x)
    x = layers.norm(self.norm, train, self.dtype)(x)
    return nn.relu(x) if act else x

  @nn.compact
  def __call__(self, x, train=False):
    inputs = x
    x = self._conv(x.astype(self.dtype), self.width, 7, train, reflect=True)
    for level in range(1, DOWNSAMPLINGS + 1):
      x = self._conv(x, self.width * 2 ** level, 3, train, strides=2)
    width = self.width * 2 ** DOWNSAMPLINGS
    for _ in range(self.blocks):
      y = self._conv(x, width, 3, train, reflect=True)
      x = x + self._conv(y, width, 3, train, reflect=True, act=False)
    for level in reversed(range(DOWNSAMPLINGS)):
      x = layers.Upsample2x(self.width * 2 ** level, self.upsample, self.dtype)(x)
      x = nn.relu(layers.norm(self.norm, train, self.dtype)(x))
    return head.output_head(self, x, inputs, kernel=7, reflect=True)


def from_config(model_config, dtype, **fixed):
  """The generator a config names: ``model.preset`` with any ``model.FIELD`` that is set, then
  ``fixed`` (the task's head)."""
  return layers.from_preset(ResnetGenerator, PRESETS[model_config.preset], model_config,
                            dtype=dtype, **fixed)


def total_stride(model):
  del model
  return 2 ** DOWNSAMPLINGS
