"""The output head of every per-pixel network (U-Net, fusion CNN, VGG16 generator, ResNet
generator): a conv to the output channels, computed in float32 from there on, brought to the
input's size, the output activation, and the input joined in front with ``join_l``.

The task fixes the head through the network's fields ``out_channels``, ``output_activation`` and
``join_l``.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from colorjax.models import convs

OUTPUT_ACTIVATIONS = ('tanh', 'sigmoid', 'none')


def output_activation(x, kind):
  """'tanh' (about [-1, 1]), 'sigmoid' ([0, 1]) or 'none' (logits)."""
  if kind == 'tanh':
    return jnp.tanh(x)
  if kind == 'sigmoid':
    return nn.sigmoid(x)
  return x


def output_head(net, x, inputs, kernel=1, reflect=False):
  """The head of ``net`` (the calling compact module: its out_channels, output_activation,
  join_l and dtype) on its last features ``x`` for ``inputs`` [N, H, W, C]: a ``kernel`` x
  ``kernel`` conv (reflection-padded with ``reflect``), a bilinear resize to H x W where ``x`` is
  smaller, the activation, and [inputs, output] with ``join_l``. Its conv is named in ``net``'s
  scope, as the network's own layers are."""
  if reflect:
    pad = kernel // 2
    conv = convs.ReflectPaddedConv(net.out_channels, (kernel, kernel),
                                   padding=((pad, pad), (pad, pad)), dtype=net.dtype)
  else:
    conv = convs.Conv(net.out_channels, (kernel, kernel), dtype=net.dtype)
  x = conv(x).astype(jnp.float32)
  if x.shape[1:3] != inputs.shape[1:3]:
    x = jax.image.resize(x, inputs.shape[:3] + x.shape[-1:], 'bilinear')
  x = output_activation(x, net.output_activation)
  return jnp.concatenate([inputs.astype(jnp.float32), x], axis=-1) if net.join_l else x
