"""InceptionV3 (Szegedy et al.) as ``keras.applications.InceptionV3(include_top=False,
pooling='avg')`` builds it, inference only: the 2048-d pooled features FID compares.

Every conv is conv (no bias) + BatchNormalization(scale=False, epsilon=1e-3) + ReLU; Flax names
them ConvBN_0 ... ConvBN_93 in the order Keras creates them, which is the order of the numbers in
the Keras layer names (conv2d_1 ... conv2d_94 in the published file, conv2d ... conv2d_93 in a
fresh Keras 3 session). The 'same' average pools leave the padding out of the mean, as Keras does.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from colorjax.core import color
from colorjax.core.validation import UserError
from colorjax.models import keras_weights

SIZE = 299        # the input size of the published weights (any size >= 75 runs)
FEATURES = 2048
CONVS = 94


def preprocess(rgb):
  """RGB in [0, 1] -> [-1, 1] (Keras 'tf' mode)."""
  return rgb * 2.0 - 1.0


def resize_for_inception(images):
  """[N, H, W, 3] -> [N, 299, 299, 3], bilinear without antialiasing (as TF's resize_bilinear
  and pytorch-fid)."""
  n, _, _, c = images.shape
  return jax.image.resize(images, (n, SIZE, SIZE, c), 'bilinear', antialias=False)


class ConvBN(nn.Module):
  features: int
  kernel: tuple
  strides: int = 1
  padding: str = 'SAME'
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(self.features, self.kernel, (self.strides, self.strides), self.padding,
                use_bias=False, dtype=self.dtype, name='conv')(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, use_scale=False, dtype=self.dtype,
                     name='bn')(x)
    return nn.relu(x)


def _avg_pool(x):
  return nn.avg_pool(x, (3, 3), (1, 1), 'SAME', count_include_pad=False)


def _max_pool(x):
  return nn.max_pool(x, (3, 3), (2, 2))


class InceptionV3(nn.Module):
  """Preprocessed images [N, H, W, 3] (H, W >= 75) -> pooled features [N, 2048] float32."""
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    def cbn(x, features, kh, kw, strides=1, padding='SAME'):
      return ConvBN(features, (kh, kw), strides, padding, self.dtype)(x)

    x = cbn(x.astype(self.dtype), 32, 3, 3, 2, 'VALID')
    x = cbn(x, 32, 3, 3, padding='VALID')
    x = _max_pool(cbn(x, 64, 3, 3))
    x = cbn(x, 80, 1, 1, padding='VALID')
    x = _max_pool(cbn(x, 192, 3, 3, padding='VALID'))
    for pool_features in (32, 64, 64):                          # mixed0-2: 35x35
      x = jnp.concatenate([
          cbn(x, 64, 1, 1),
          cbn(cbn(x, 48, 1, 1), 64, 5, 5),
          cbn(cbn(cbn(x, 64, 1, 1), 96, 3, 3), 96, 3, 3),
          cbn(_avg_pool(x), pool_features, 1, 1)], -1)
    x = jnp.concatenate([                                      # mixed3: to 17x17
        cbn(x, 384, 3, 3, 2, 'VALID'),
        cbn(cbn(cbn(x, 64, 1, 1), 96, 3, 3), 96, 3, 3, 2, 'VALID'),
        _max_pool(x)], -1)
    for c in (128, 160, 160, 192):                             # mixed4-7: factorised 7x7
      x = jnp.concatenate([
          cbn(x, 192, 1, 1),
          cbn(cbn(cbn(x, c, 1, 1), c, 1, 7), 192, 7, 1),
          cbn(cbn(cbn(cbn(cbn(x, c, 1, 1), c, 7, 1), c, 1, 7), c, 7, 1), 192, 1, 7),
          cbn(_avg_pool(x), 192, 1, 1)], -1)
    x = jnp.concatenate([                                      # mixed8: to 8x8
        cbn(cbn(x, 192, 1, 1), 320, 3, 3, 2, 'VALID'),
        cbn(cbn(cbn(cbn(x, 192, 1, 1), 192, 1, 7), 192, 7, 1), 192, 3, 3, 2, 'VALID'),
        _max_pool(x)], -1)
    for _ in range(2):                                         # mixed9-10: expanded 3x3
      branch1x1 = cbn(x, 320, 1, 1)
      branch3x3 = cbn(x, 384, 1, 1)
      branch3x3 = jnp.concatenate([cbn(branch3x3, 384, 1, 3), cbn(branch3x3, 384, 3, 1)], -1)
      double = cbn(cbn(x, 448, 1, 1), 384, 3, 3)
      double = jnp.concatenate([cbn(double, 384, 1, 3), cbn(double, 384, 3, 1)], -1)
      x = jnp.concatenate([branch1x1, branch3x3, double, cbn(_avg_pool(x), 192, 1, 1)], -1)
    return x.astype(jnp.float32).mean(axis=(1, 2))


def _numbered(weights, prefix):
  """Layer names 'prefix' and 'prefix_<n>' in creation order (by n; the bare name is first)."""
  names = [n for n in weights if n == prefix or (n.rpartition('_')[0] == prefix
                                                  and n.rpartition('_')[2].isdigit())]
  return sorted(names, key=lambda n: int(n.rpartition('_')[2]) if n != prefix else -1)


def load_params(path):
  """The variables ({'params', 'batch_stats'}) of a Keras InceptionV3 weight file."""
  weights = keras_weights.read_h5(path)
  convs, norms = _numbered(weights, 'conv2d'), _numbered(weights, 'batch_normalization')
  if len(convs) != CONVS or len(norms) != CONVS:
    raise UserError(
        f'{path} has {len(convs)} conv2d and {len(norms)} batch_normalization layers, expected '
        f'{CONVS} of each; use an InceptionV3 weight file ({keras_weights.INCEPTION_V3_NOTOP}).')
  shapes = jax.eval_shape(lambda: InceptionV3().init(jax.random.PRNGKey(0),
                                                     jnp.zeros((1, SIZE, SIZE, 3))))
  params, stats = {}, {}
  for i, (conv, norm) in enumerate(zip(convs, norms)):
    module = f'ConvBN_{i}'
    kernel_shape = shapes['params'][module]['conv']['kernel'].shape
    (kernel,) = keras_weights.take(weights, conv, [kernel_shape], path)
    channels = (kernel_shape[-1],)
    beta, mean, var = keras_weights.take(weights, norm, [channels] * 3, path)
    params[module] = {'conv': {'kernel': jnp.asarray(kernel)}, 'bn': {'bias': jnp.asarray(beta)}}
    stats[module] = {'bn': {'mean': jnp.asarray(mean), 'var': jnp.asarray(var)}}
  return {'params': params, 'batch_stats': stats}


@jax.jit
def features(variables, images):
  """Images [N, H, W, 3], uint8 or float in [0, 1], any size -> InceptionV3 pool features
  [N, 2048] float32 (resized to 299x299 first)."""
  if images.dtype == jnp.uint8:
    images = color.uint8_to_unit(images)
  x = preprocess(resize_for_inception(images.astype(jnp.float32)))
  return InceptionV3().apply(variables, x)
