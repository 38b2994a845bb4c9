"""Keras weight files (HDF5 only, read with h5py; never pickle, never a download).

Two layouts are read: the legacy one of the published keras-applications files and of
``model.save('x.h5')`` (root or ``model_weights`` attrs ``layer_names``, each layer group's attrs
``weight_names``), and Keras 3's ``model.save_weights('x.weights.h5')`` (``layers/<class
path>/vars/0..n``, nested models under ``layers/functional/layers/...``, the layer's name in the
``vars`` group's ``name`` attr).
"""
import os

import numpy as np

from colorjax.core.validation import UserError

_BASE_URL = 'https://storage.googleapis.com/tensorflow/keras-applications'
VGG16_TOP = 'vgg16_weights_tf_dim_ordering_tf_kernels.h5'
VGG16_NOTOP = 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5'
INCEPTION_V3_NOTOP = 'inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5'
URLS = {
    VGG16_TOP: f'{_BASE_URL}/vgg16/{VGG16_TOP}',
    VGG16_NOTOP: f'{_BASE_URL}/vgg16/{VGG16_NOTOP}',
    INCEPTION_V3_NOTOP: f'{_BASE_URL}/inception_v3/{INCEPTION_V3_NOTOP}',
}


def cache_dir():
  """Where Keras keeps downloaded weights: $KERAS_HOME/models or ~/.keras/models."""
  return os.path.join(os.environ.get('KERAS_HOME', os.path.expanduser('~/.keras')), 'models')


def find_weights(filename, path=None, setting='the weights path'):
  """``path`` when it exists, else ``filename`` in the Keras cache; UserError when neither."""
  if path and os.path.isfile(path):
    return path
  cached = os.path.join(cache_dir(), filename)
  if os.path.isfile(cached):
    return cached
  given = f'{path} does not exist and ' if path else ''
  raise UserError(f'{given}{filename} is not in {cache_dir()}: put it there or set {setting} to '
                  f'its path (it is downloaded from {URLS.get(filename, "keras-applications")}).')


def _text(value):
  return value.decode() if isinstance(value, bytes) else str(value)


def _read_legacy(root):
  """Layer groups in ``layer_names`` order; a weight belongs to the layer its name ends in
  ('vgg16/block1_conv1/kernel' -> block1_conv1), or to its group for Keras 1 names
  ('block1_conv1_W_1:0')."""
  weights = {}
  for layer in map(_text, root.attrs['layer_names']):
    group = root[layer]
    for name in map(_text, group.attrs['weight_names']):
      owner = name.split('/')[-2] if '/' in name else layer
      weights.setdefault(owner, []).append(np.asarray(group[name]))
  return weights


def _read_keras3(root):
  """Every non-empty ``vars`` group, under its layer's name (or its class path's last part)."""
  weights = {}

  def visit(key, item):
    parent, _, leaf = key.rpartition('/')
    if leaf == 'vars' and len(item):
      name = _text(item.attrs.get('name', parent.rpartition('/')[2]))
      weights[name] = [np.asarray(item[str(i)]) for i in range(len(item))]

  root.visititems(visit)
  return weights


def read_h5(path):
  """Layer name -> its weights in Keras order (kernel, bias; BatchNormalization: [gamma,] beta,
  moving_mean, moving_variance)."""
  import h5py
  try:
    with h5py.File(path, 'r') as f:
      root = f['model_weights'] if 'model_weights' in f else f
      weights = _read_legacy(root) if 'layer_names' in root.attrs else _read_keras3(root)
  except (OSError, KeyError) as e:
    raise UserError(f'{path} is not a readable Keras weight file ({e}); download it '
                    'again.') from None
  if not weights:
    raise UserError(f'{path} holds no Keras layer weights; use a file written by Keras '
                    "save_weights or model.save('x.h5').")
  return weights


def take(weights, layer, shapes, path):
  """``weights[layer]`` as float32 arrays, checked against the expected ``shapes``."""
  if layer not in weights:
    raise UserError(f'{path} has no layer {layer!r}; use a weight file of the same model and '
                    'head.')
  found = [tuple(w.shape) for w in weights[layer]]
  expected = [tuple(s) for s in shapes]
  if found != expected:
    raise UserError(f'{path}: layer {layer!r} has weights of shapes {found}, expected '
                    f'{expected}; use a weight file of the same model and head.')
  return [np.asarray(w, np.float32) for w in weights[layer]]
