"""VGG16 (Simonyan & Zisserman) as keras.applications builds it, loadable from its weight files.

Layer names are Keras's (block1_conv1 ... block5_pool, fc1, fc2, predictions), so the params
pytree is the Keras file's layers one to one. Inputs are Keras 'caffe' preprocessed: BGR, 0-255,
ImageNet channel means subtracted.
"""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from colorjax.core import color
from colorjax.models import convs, keras_weights

BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))   # (features, convs) per block
CONVS = tuple(f'block{b}_conv{i}' for b, (_, n) in enumerate(BLOCKS, 1) for i in range(1, n + 1))
POOLS = tuple(f'block{b}_pool' for b in range(1, len(BLOCKS) + 1))
HEAD = ('fc1', 'fc2', 'logits', 'predictions')
BGR_MEANS = (103.939, 116.779, 123.68)
TOP_SIZE = 224   # the classifier head needs 224x224 inputs (7x7x512 into fc1)


def preprocess(rgb):
  """RGB [..., 3] in [0, 1] -> VGG's input (Keras 'caffe' mode)."""
  return rgb[..., ::-1] * 255.0 - jnp.asarray(BGR_MEANS, rgb.dtype)


def gray_input(L):
  """Normalised L [..., 1] in [-1, 1] -> VGG's input for the gray picture with that L*."""
  L = color.denormalize_l(L)
  gray = color.join_l_ab(L, jnp.zeros(L.shape[:-1] + (2,), L.dtype)).mean(-1, keepdims=True)
  return preprocess(jnp.repeat(gray, 3, axis=-1))


class VGG16(nn.Module):
  """Preprocessed images [N, H, W, 3] -> logits [N, 1000] with ``include_top`` (224x224 only),
  else block5_pool; or, with ``outputs``, a dict of those named layers (CONVS, POOLS, HEAD),
  computing only as far as the deepest one. Outputs are float32."""
  include_top: bool = False
  outputs: Sequence[str] = ()
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    available = CONVS + POOLS + (HEAD if self.include_top else ())
    unknown = [name for name in self.outputs if name not in available]
    if unknown:
      raise ValueError(f'VGG16 has no output {unknown[0]!r}; use one of {", ".join(available)}.')

    def layers(x):
      for block, (features, count) in enumerate(BLOCKS, 1):
        for i in range(1, count + 1):
          name = f'block{block}_conv{i}'
          x = nn.relu(convs.Conv(features, (3, 3), padding='SAME', dtype=self.dtype, name=name)(x))
          yield name, x
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        yield f'block{block}_pool', x
      if self.include_top:
        x = x.reshape(x.shape[0], -1)   # NHWC order, as Keras's Flatten
        for name in ('fc1', 'fc2'):
          x = nn.relu(nn.Dense(4096, dtype=self.dtype, name=name)(x))
          yield name, x
        x = nn.Dense(1000, dtype=self.dtype, name='predictions')(x).astype(jnp.float32)
        yield 'logits', x
        yield 'predictions', nn.softmax(x)

    taps = {}
    for name, value in layers(x.astype(self.dtype)):
      taps[name] = value
      if self.outputs and all(n in taps for n in self.outputs):
        return {n: taps[n].astype(jnp.float32) for n in self.outputs}
    return taps['logits' if self.include_top else 'block5_pool'].astype(jnp.float32)


def load_params(path, include_top=False):
  """The params pytree of a Keras VGG16 weight file (see keras_weights.read_h5)."""
  weights = keras_weights.read_h5(path)
  size = TOP_SIZE if include_top else 32
  shapes = jax.eval_shape(lambda: VGG16(include_top).init(
      jax.random.PRNGKey(0), jnp.zeros((1, size, size, 3))))['params']
  params = {}
  for layer, leaves in shapes.items():
    kernel, bias = keras_weights.take(weights, layer, [leaves['kernel'].shape,
                                                       leaves['bias'].shape], path)
    params[layer] = {'kernel': jnp.asarray(kernel), 'bias': jnp.asarray(bias)}
  return params
