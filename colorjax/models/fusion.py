"""The fusion CNN: a local encoder on L, a global embedding from VGG16, fused, decoded to ab.

The encoder runs 3x3 conv-norm-ReLU layers on L, halving the resolution at stride-2 layers
(strided convs, or 2x2 max pooling after the conv). VGG16 sees the gray picture of the same L
(``vgg.gray_input``) and gives one vector per image: the global average of block5_pool, or fc2
on the picture resized to 224² when the classifier head is used. The vector is tiled over the
encoder's grid and concatenated to its features (the fusion layer), a 1x1 conv mixes them, and
the decoder's 3x3 conv-norm-ReLU layers (scale 2: a 2x up-sampling layer) lead to the output
conv; what resolution the decoder does not restore is a bilinear resize of the output.

The VGG16 branch (params under 'vgg', Keras's layer names) is frozen unless ``vgg_trainable``:
no gradient flows into it, and the task's optimiser leaves its params alone.
"""
from typing import Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from colorjax.models import convs, head, layers, vgg

VGG_BRANCH = 'vgg'                 # the params key of the VGG16 branch
VGG_FEATURES = ('pool', 'fc2')
VGG_POOLING = 32                   # VGG16's block5_pool divides the sides by this

PRESETS = {
    # Deep Koalarization (Baldassarre et al.) with VGG16 in place of Inception-ResNet: eight
    # strided-conv encoder layers to H/8, fusion to 256, decoder to H/2, the output resized 2x.
    'koalarization': dict(
        encoder=((64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 1), (256, 1)),
        downsample='stride', fusion_features=256, decoder=((128, 1), (64, 2), (64, 1), (32, 2)),
        norm='batch', upsample='resize', output_activation='tanh'),
    # The global+local network: a 3-layer local net (64, 128, 128 filters, 3x3, batch norm,
    # max pooling, ReLU) to H/8, VGG16 global features fused, two 3x3 convs of 64 filters and a
    # tanh output for a and b, resized 8x.
    'global_local': dict(
        encoder=((64, 2), (128, 2), (128, 2)), downsample='maxpool', fusion_features=128,
        decoder=((64, 1), (64, 1)), norm='batch', upsample='resize', output_activation='tanh'),
}


class Fusion(nn.Module):
  """L [N, H, W, 1] in [-1, 1] -> ``out_channels`` maps, or [L, those] with ``join_l``."""
  encoder: Sequence[Tuple[int, int]] = PRESETS['koalarization']['encoder']  # (features, stride)
  downsample: str = 'stride'       # stride-2 layers: a strided conv, or 'maxpool' after it
  fusion_features: int = 256
  decoder: Sequence[Tuple[int, int]] = PRESETS['koalarization']['decoder']  # (features, scale)
  norm: str = 'batch'
  upsample: str = 'resize'
  vgg_features: str = 'pool'
  vgg_trainable: bool = False
  out_channels: int = 2
  output_activation: str = 'tanh'
  join_l: bool = False
  dtype: jnp.dtype = jnp.float32

  def _global_features(self, L):
    """[N, D]: VGG16's pooled block5 (D = 512) or fc2 (D = 4096) of the gray picture of L."""
    x = vgg.gray_input(L.astype(jnp.float32))
    if self.vgg_features == 'fc2':
      x = jax.image.resize(x, (x.shape[0], vgg.TOP_SIZE, vgg.TOP_SIZE, 3), 'bilinear')
      features = vgg.VGG16(include_top=True, outputs=('fc2',), dtype=self.dtype,
                           name=VGG_BRANCH)(x)['fc2']
    else:
      features = vgg.VGG16(dtype=self.dtype, name=VGG_BRANCH)(x).mean(axis=(1, 2))
    return features if self.vgg_trainable else jax.lax.stop_gradient(features)

  @nn.compact
  def __call__(self, L, train=False):
    block = dict(norm_kind=self.norm, act=nn.relu, train=train, dtype=self.dtype)
    x = L.astype(self.dtype)
    for features, stride in self.encoder:
      strided = stride == 2 and self.downsample == 'stride'
      x = layers.conv_norm_act(x, features, strides=2 if strided else 1, **block)
      if stride == 2 and not strided:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
    embedding = self._global_features(L).astype(self.dtype)
    tiled = jnp.broadcast_to(embedding[:, None, None, :], x.shape[:3] + embedding.shape[-1:])
    x = convs.concat_channels([x, tiled])
    x = nn.relu(convs.Conv(self.fusion_features, (1, 1), dtype=self.dtype)(x))
    for features, scale in self.decoder:
      if scale == 2:
        x = layers.Upsample2x(features, self.upsample, self.dtype)(x)
        x = nn.relu(layers.norm(self.norm, train, self.dtype)(x))
      else:
        x = layers.conv_norm_act(x, features, **block)
    return head.output_head(self, x, L)


def from_config(model_config, dtype, **fixed):
  """The fusion network a config names: ``model.preset`` with any ``model.FIELD`` that is set,
  then ``fixed`` (the task's head: out_channels, output_activation, join_l)."""
  return layers.from_preset(Fusion, PRESETS[model_config.preset], model_config, dtype=dtype,
                            **fixed)


def total_stride(model):
  """Image sides must be multiples of this: the encoder's stride, and VGG16's 32 when it sees
  the image at its own size (``vgg_features='pool'``)."""
  stride = 2 ** sum(s == 2 for _, s in model.encoder)
  return max(stride, VGG_POOLING) if model.vgg_features == 'pool' else stride
