"""Reference Keras models with random weights, saved in every weight-file layout colorjax reads
(for the VGG16 and InceptionV3 equivalence tests and the FID test). Imports Keras: only from
tests that need it."""
import h5py
import keras
import numpy as np

# 'legacy': model.save('x.h5') (weights under model_weights); 'keras3': save_weights to
# x.weights.h5; 'published': the legacy layout renamed as the keras-applications downloads
# name things (Keras 1 'block1_conv1_W_1:0' for VGG16, Keras 2 'conv2d_1/kernel:0' for InceptionV3).
FORMATS = ('legacy', 'keras3', 'published')
TOLERANCE = 1e-4
KERAS1 = {'kernel': 'W', 'bias': 'b'}


def relative_error(ours, reference):
  ours, reference = np.asarray(ours), np.asarray(reference)
  assert ours.shape == reference.shape
  return np.abs(ours - reference).max() / np.abs(reference).max()


def sees_its_input(reference):
  """The random network's two outputs differ (it did not collapse to its biases)."""
  reference = np.asarray(reference)
  return np.abs(reference[0] - reference[1]).max() > 0.02 * np.abs(reference).max()


def images01(shape, seed):
  return np.random.default_rng(seed).uniform(0, 1, shape).astype(np.float32)


def randomise(model, seed, calibration=None):
  """Random biases, and BatchNormalization statistics near those of the ``calibration`` images
  but shifted and rescaled, so every weight matters and the outputs still depend on the input."""
  norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
  for layer in norms:
    layer.momentum = 0.0   # a training-mode call then sets the moving statistics to the batch's
  if norms:
    model(calibration, training=True)
  rng = np.random.default_rng(seed)
  values = []
  for v in model.weights:
    value, name = np.asarray(v), v.path.rpartition('/')[2]
    if name == 'moving_variance':
      value = value * rng.uniform(0.5, 2.0, value.shape)
    elif name == 'moving_mean':
      value = value + rng.normal(0.0, 0.2, value.shape)
    elif name in ('bias', 'beta'):
      value = rng.normal(0.0, 0.1, value.shape)
    values.append(value.astype(np.float32))
  model.set_weights(values)


def bump(layer):
  """Keras 3's 0-based automatic layer names -> Keras 2's 1-based ones (conv2d -> conv2d_1)."""
  base, _, n = layer.rpartition('_')
  if layer in ('conv2d', 'batch_normalization'):
    return f'{layer}_1'
  return f'{base}_{int(n) + 1}' if base in ('conv2d', 'batch_normalization') else layer


def published_style(src, dst, keras1):
  with h5py.File(src) as f, h5py.File(dst, 'w') as g:
    root = f['model_weights']
    layers = [n.decode() if isinstance(n, bytes) else n for n in root.attrs['layer_names']]
    g.attrs['layer_names'] = [bump(layer).encode() for layer in layers]
    for layer in layers:
      new, names = bump(layer), []
      group = g.create_group(new)
      for weight in root[layer].attrs['weight_names']:
        short = weight.rpartition('/')[2]
        names.append(f'{new}_{KERAS1[short]}_1:0' if keras1 else f'{new}/{short}:0')
        group[names[-1]] = root[layer][weight][()]
      group.attrs['weight_names'] = [n.encode() for n in names]


def save_all(model, folder, keras1):
  paths = {'legacy': folder / 'model.h5', 'keras3': folder / 'model.weights.h5',
           'published': folder / 'published.h5'}
  model.save(paths['legacy'])
  model.save_weights(paths['keras3'])
  published_style(paths['legacy'], paths['published'], keras1)
  return {k: str(v) for k, v in paths.items()}
