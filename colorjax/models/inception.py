"""InceptionV3 (Szegedy et al.) inference up to the 2048-d pooled features FID compares, in the
three variants FIDs are published with (``NETWORKS``), from each one's own weight file.

- ``standard``: the TensorFlow Inception graph of 2015-12-05 with which Heusel et al. defined
  FID (their TTUR code, pytorch-fid, clean-fid's legacy mode), from pytorch-fid's port of its
  weights. It differs from the others in two places: its average pools leave the padding out of
  the mean, and its last block pools with a max, not an average.
- ``torchvision``: torchvision's ImageNet Inception-v3 (its average pools count the padding).
- ``keras``: ``keras.applications.InceptionV3(include_top=False, pooling='avg')`` (batch norm
  without a learned scale, pools as the standard graph's but average in the last block).

Every conv is conv (no bias) + batch norm (epsilon 1e-3) + ReLU; Flax names them ConvBN_0 ...
ConvBN_93 in the order the networks define them, which is the order of Keras's layer numbers
and of torchvision's module names (``TORCH_NAMES``). Images are resized to 299² bilinearly
without antialiasing (as pytorch-fid and TF's resize_bilinear) and scaled to [-1, 1].
"""
import dataclasses
import functools
import os

import flax.linen as nn
import jax
import jax.numpy as jnp

from colorjax.core import color
from colorjax.core.validation import UserError
from colorjax.models import keras_weights, torch_weights

SIZE = 299        # the input size of the published weights (any size >= 75 runs)
FEATURES = 2048
CONVS = 94
STANDARD_INPUT = (2.0, -1.0)  # RGB in [0, 1] -> x * scale + shift in [-1, 1]


@dataclasses.dataclass(frozen=True)
class Network:
  """One published Inception-v3 variant: its weight file and where it differs from the others."""
  name: str
  description: str
  filename: str               # the weight file's name as its project publishes it
  url: str
  scale: bool                 # batch norm has a learned scale
  pools_count_padding: bool   # the 3x3 average pools divide by 9 at the border too
  last_pool: str              # 'avg' or 'max': the pool branch of the last block


NETWORKS = {
    'standard': Network(
        'standard', "FID's Inception (TensorFlow graph 2015-12-05, pytorch-fid's weights)",
        'pt_inception-2015-12-05-6726825d.pth',
        'https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/'
        'pt_inception-2015-12-05-6726825d.pth', True, False, 'max'),
    'torchvision': Network(
        'torchvision', "torchvision's ImageNet Inception-v3", 'inception_v3_google-0cc3c7bd.pth',
        'https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth', True, True,
        'avg'),
    'keras': Network(
        'keras', "Keras's ImageNet InceptionV3", keras_weights.INCEPTION_V3_NOTOP,
        keras_weights.URLS[keras_weights.INCEPTION_V3_NOTOP], False, False, 'avg'),
}


def _torch_names():
  """torchvision's BasicConv2d module names in ConvBN_i order."""
  blocks = {
      'A': ('branch1x1', 'branch5x5_1', 'branch5x5_2', 'branch3x3dbl_1', 'branch3x3dbl_2',
            'branch3x3dbl_3', 'branch_pool'),
      'B': ('branch3x3', 'branch3x3dbl_1', 'branch3x3dbl_2', 'branch3x3dbl_3'),
      'C': ('branch1x1', *(f'branch7x7_{i}' for i in range(1, 4)),
            *(f'branch7x7dbl_{i}' for i in range(1, 6)), 'branch_pool'),
      'D': ('branch3x3_1', 'branch3x3_2', *(f'branch7x7x3_{i}' for i in range(1, 5))),
      'E': ('branch1x1', 'branch3x3_1', 'branch3x3_2a', 'branch3x3_2b', 'branch3x3dbl_1',
            'branch3x3dbl_2', 'branch3x3dbl_3a', 'branch3x3dbl_3b', 'branch_pool'),
  }
  layout = (('Mixed_5b', 'A'), ('Mixed_5c', 'A'), ('Mixed_5d', 'A'), ('Mixed_6a', 'B'),
            ('Mixed_6b', 'C'), ('Mixed_6c', 'C'), ('Mixed_6d', 'C'), ('Mixed_6e', 'C'),
            ('Mixed_7a', 'D'), ('Mixed_7b', 'E'), ('Mixed_7c', 'E'))
  stem = ['Conv2d_1a_3x3', 'Conv2d_2a_3x3', 'Conv2d_2b_3x3', 'Conv2d_3b_1x1', 'Conv2d_4a_3x3']
  return stem + [f'{block}.{name}' for block, kind in layout for name in blocks[kind]]


TORCH_NAMES = _torch_names()


def torch_cache_dir():
  """Where torch.hub (pytorch-fid, torchvision) keeps downloaded weights."""
  home = os.environ.get('TORCH_HOME') or os.path.join(
      os.environ.get('XDG_CACHE_HOME', os.path.expanduser('~/.cache')), 'torch')
  return os.path.join(home, 'hub', 'checkpoints')


def find_weights(network, path=None, setting='--fid_weights'):
  """``path`` when given, else the network's file in its project's download cache; UserError
  naming both places and the download address when neither has it."""
  if path:
    if not os.path.isfile(path):
      raise UserError(f'{setting}={path} is not a file.')
    return path
  folder = keras_weights.cache_dir() if network.name == 'keras' else torch_cache_dir()
  cached = os.path.join(folder, network.filename)
  if os.path.isfile(cached):
    return cached
  raise UserError(f'{network.filename} ({network.description}) is not in {folder}: put it there '
                  f'or give {setting}=PATH (it is downloaded from {network.url}).')


def preprocess(rgb, scale=STANDARD_INPUT[0], shift=STANDARD_INPUT[1]):
  """RGB in [0, 1] -> rgb * scale + shift (per channel when tuples): [-1, 1] by default, the
  range every variant's weights expect; evaluation protocols may map it as their code did."""
  return rgb * jnp.asarray(scale, rgb.dtype) + jnp.asarray(shift, rgb.dtype)


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
  scale: bool = False
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(self.features, self.kernel, (self.strides, self.strides), self.padding,
                use_bias=False, dtype=self.dtype, name='conv')(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, use_scale=self.scale,
                     dtype=self.dtype, name='bn')(x)
    return nn.relu(x)


def _max_pool(x):
  return nn.max_pool(x, (3, 3), (2, 2))


class InceptionV3(nn.Module):
  """Preprocessed images [N, H, W, 3] (H, W >= 75) -> pooled features [N, 2048] float32."""
  network: str = 'keras'  # a key of NETWORKS
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    network = NETWORKS[self.network]

    def cbn(x, features, kh, kw, strides=1, padding='SAME'):
      return ConvBN(features, (kh, kw), strides, padding, network.scale, self.dtype)(x)

    def pool(x, kind='avg'):
      if kind == 'max':
        return nn.max_pool(x, (3, 3), (1, 1), 'SAME')
      return nn.avg_pool(x, (3, 3), (1, 1), 'SAME',
                         count_include_pad=network.pools_count_padding)

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
          cbn(pool(x), pool_features, 1, 1)], -1)
    x = jnp.concatenate([                                      # mixed3: to 17x17
        cbn(x, 384, 3, 3, 2, 'VALID'),
        cbn(cbn(cbn(x, 64, 1, 1), 96, 3, 3), 96, 3, 3, 2, 'VALID'),
        _max_pool(x)], -1)
    for c in (128, 160, 160, 192):                             # mixed4-7: factorised 7x7
      x = jnp.concatenate([
          cbn(x, 192, 1, 1),
          cbn(cbn(cbn(x, c, 1, 1), c, 1, 7), 192, 7, 1),
          cbn(cbn(cbn(cbn(cbn(x, c, 1, 1), c, 7, 1), c, 1, 7), c, 7, 1), 192, 1, 7),
          cbn(pool(x), 192, 1, 1)], -1)
    x = jnp.concatenate([                                      # mixed8: to 8x8
        cbn(cbn(x, 192, 1, 1), 320, 3, 3, 2, 'VALID'),
        cbn(cbn(cbn(cbn(x, 192, 1, 1), 192, 1, 7), 192, 7, 1), 192, 3, 3, 2, 'VALID'),
        _max_pool(x)], -1)
    for last in (False, True):                                 # mixed9-10: expanded 3x3
      branch1x1 = cbn(x, 320, 1, 1)
      branch3x3 = cbn(x, 384, 1, 1)
      branch3x3 = jnp.concatenate([cbn(branch3x3, 384, 1, 3), cbn(branch3x3, 384, 3, 1)], -1)
      double = cbn(cbn(x, 448, 1, 1), 384, 3, 3)
      double = jnp.concatenate([cbn(double, 384, 1, 3), cbn(double, 384, 3, 1)], -1)
      branch_pool = cbn(pool(x, network.last_pool if last else 'avg'), 192, 1, 1)
      x = jnp.concatenate([branch1x1, branch3x3, double, branch_pool], -1)
    return x.astype(jnp.float32).mean(axis=(1, 2))


def _numbered(weights, prefix):
  """Layer names 'prefix' and 'prefix_<n>' in creation order (by n; the bare name is first)."""
  names = [n for n in weights if n == prefix or (n.rpartition('_')[0] == prefix
                                                  and n.rpartition('_')[2].isdigit())]
  return sorted(names, key=lambda n: int(n.rpartition('_')[2]) if n != prefix else -1)


def _kernel_shapes(network):
  variables = jax.eval_shape(lambda: InceptionV3(network.name).init(
      jax.random.PRNGKey(0), jnp.zeros((1, SIZE, SIZE, 3))))
  return [variables['params'][f'ConvBN_{i}']['conv']['kernel'].shape for i in range(CONVS)]


def _keras_layers(path, shapes):
  """Per conv {kernel, bias, mean, var} of a Keras weight file (its batch norm has no scale)."""
  weights = keras_weights.read_h5(path)
  convs, norms = _numbered(weights, 'conv2d'), _numbered(weights, 'batch_normalization')
  if len(convs) != CONVS or len(norms) != CONVS:
    raise UserError(
        f'{path} has {len(convs)} conv2d and {len(norms)} batch_normalization layers, expected '
        f'{CONVS} of each; use an InceptionV3 weight file ({keras_weights.INCEPTION_V3_NOTOP}).')
  layers = []
  for conv, norm, shape in zip(convs, norms, shapes):
    (kernel,) = keras_weights.take(weights, conv, [shape], path)
    layers.append({'kernel': kernel, **dict(zip(
        ('bias', 'mean', 'var'), keras_weights.take(weights, norm, [shape[-1:]] * 3, path)))})
  return layers


def _torch_layers(path, shapes, network):
  """Per conv {kernel, scale, bias, mean, var} of a state dict with torchvision's names."""
  weights = torch_weights.read_pth(path)
  parts = {'weight': 'conv.weight', 'scale': 'bn.weight', 'bias': 'bn.bias',
           'mean': 'bn.running_mean', 'var': 'bn.running_var'}
  layers = []
  for name, shape in zip(TORCH_NAMES, shapes):
    kh, kw, inputs, outputs = shape
    expected = {'weight': (outputs, inputs, kh, kw)}
    layer = {}
    for part, key in parts.items():
      value = weights.get(f'{name}.{key}')
      want = expected.get(part, (outputs,))
      if value is None or value.shape != want:
        found = 'no such tensor' if value is None else f'shape {value.shape}'
        raise UserError(f'{path}: {name}.{key} has {found}, expected shape {want}; use '
                        f'{network.filename} ({network.description}).')
      layer[part] = value.astype('float32')
    layer['kernel'] = layer.pop('weight').transpose(2, 3, 1, 0)
    layers.append(layer)
  return layers


def load_params(path, network='keras'):
  """The variables ({'params', 'batch_stats'}) of ``network`` (a key of NETWORKS) from its
  weight file: Keras HDF5 for 'keras', a PyTorch state dict for the others."""
  network = NETWORKS[network]
  shapes = _kernel_shapes(network)
  layers = (_keras_layers(path, shapes) if network.name == 'keras'
            else _torch_layers(path, shapes, network))
  params, stats = {}, {}
  for i, layer in enumerate(layers):
    norm = {'bias': jnp.asarray(layer['bias'])}
    if network.scale:
      norm['scale'] = jnp.asarray(layer['scale'])
    params[f'ConvBN_{i}'] = {'conv': {'kernel': jnp.asarray(layer['kernel'])}, 'bn': norm}
    stats[f'ConvBN_{i}'] = {'bn': {'mean': jnp.asarray(layer['mean']),
                                   'var': jnp.asarray(layer['var'])}}
  return {'params': params, 'batch_stats': stats}


@functools.partial(jax.jit, static_argnames=('network', 'scale', 'shift'))
def features(variables, images, network='keras', scale=STANDARD_INPUT[0],
             shift=STANDARD_INPUT[1]):
  """Images [N, H, W, 3], uint8 or float in [0, 1], any size -> ``network``'s pool features
  [N, 2048] float32 (resized to 299x299, then ``preprocess``-ed with ``scale`` and ``shift``)."""
  if images.dtype == jnp.uint8:
    images = color.uint8_to_unit(images)
  x = preprocess(resize_for_inception(images.astype(jnp.float32)), scale, shift)
  return InceptionV3(network).apply(variables, x)
