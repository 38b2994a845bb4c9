"""The fusion CNN: shapes of both presets, VGG16 weights from a Keras-saved file (the global
features match Keras), the frozen VGG16 branch (no change, no Adam moments) and the trainable
one, the no-weights warning."""
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import color as skcolor

from colorjax.core import parallel, validation
from colorjax.models import fusion
from colorjax.tasks import network, regression
from colorjax.training import experiment, runs
from conftest import colour_image, load_config


def fusion_config(**model_fields):
  config = load_config('fusion')
  config.image_size, config.batch_size = 32, 4
  config.model.preset = 'global_local'
  config.optim.schedule = 'constant'
  for name, value in model_fields.items():
    config.model[name] = value
  return config


@pytest.mark.parametrize('preset', sorted(fusion.PRESETS))
@pytest.mark.parametrize('vgg_features', fusion.VGG_FEATURES)
def test_both_presets_map_l_to_the_input_size(preset, vgg_features):
  model = fusion.Fusion(**fusion.PRESETS[preset], vgg_features=vgg_features, out_channels=7)
  L = jnp.zeros((3, 64, 96, 1))
  variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), L))
  out = jax.eval_shape(lambda v: model.apply(v, L), variables)
  assert out.shape == (3, 64, 96, 7)
  head = {'fc1', 'fc2'} & set(variables['params']['vgg'])
  assert head == ({'fc1', 'fc2'} if vgg_features == 'fc2' else set())
  assert 'predictions' not in variables['params']['vgg']


def test_global_local_is_the_literature_network():
  model = fusion.Fusion(**fusion.PRESETS['global_local'])
  L = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 1)), jnp.float32)
  variables = jax.jit(model.init)(jax.random.PRNGKey(0), L)
  out = jax.jit(model.apply)(variables, L)
  params = variables['params']
  local = [params[f'Conv_{i}']['kernel'].shape for i in range(3)]
  assert local == [(3, 3, 1, 64), (3, 3, 64, 128), (3, 3, 128, 128)]
  assert params['Conv_3']['kernel'].shape == (1, 1, 128 + 512, 128)   # fusion: local + VGG
  assert [params[f'Conv_{i}']['kernel'].shape for i in (4, 5)] == [(3, 3, 128, 64),
                                                                   (3, 3, 64, 64)]
  assert params['Conv_6']['kernel'].shape == (1, 1, 64, 2)
  assert set(params) == {*(f'Conv_{i}' for i in range(7)),
                         *(f'BatchNorm_{i}' for i in range(5)), 'vgg'}
  assert float(jnp.abs(out).max()) <= 1.0   # tanh


def train_one_step(config, weights=None):
  config = experiment.frozen(config)
  state = jax.jit(lambda r, w: regression.init(r, config, (32, 32), w))(jax.random.PRNGKey(0),
                                                                         weights)
  batch = {'rgb': jnp.asarray(np.stack([colour_image(i, (32, 32)) for i in range(4)]))}
  after, metrics = jax.jit(regression.train_step)(state, batch)
  assert np.isfinite(float(metrics['loss']))
  return state, after


def changed(before, after):
  return {jax.tree_util.keystr(path): bool(np.any(np.asarray(a) != np.asarray(b)))
          for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(before),
                                  jax.tree.leaves(after))}


def moments(opt_state):
  """Array elements the optimiser keeps (Adam's mu and nu; not its step counts)."""
  return sum(x.size for x in jax.tree.leaves(opt_state) if x.ndim)


def sizes(params):
  return sum(x.size for x in jax.tree.leaves(params))


def test_a_trainable_vgg_branch_trains_with_adam_moments():
  before, after = train_one_step(fusion_config(vgg_trainable=True))
  assert all(changed(before.params, after.params).values())
  assert moments(after.opt_state) == 2 * sizes(before.params)


def test_vgg16_weights_from_a_keras_file_are_loaded_as_saved_and_train(keras_vgg_file):
  from keras_reference import relative_error, sees_its_input
  keras_model, path = keras_vgg_file
  config = fusion_config(vgg_weights=path)
  experiment.validate(config)
  state = runs.init_state(regression, experiment.frozen(config), parallel.make_mesh())
  for layer in keras_model.layers:
    for ours, theirs in zip(('kernel', 'bias'), layer.get_weights()):
      np.testing.assert_array_equal(state.params['vgg'][layer.name][ours], theirs)
  # The global features: Keras VGG16's block5_pool of the gray picture (scikit-image's L -> RGB),
  # averaged, as the fusion layer receives them.
  L = np.random.default_rng(1).uniform(0, 100, (2, 32, 32, 1))
  gray = skcolor.lab2rgb(np.concatenate([L, np.zeros_like(L), np.zeros_like(L)], -1))
  import keras
  reference = np.asarray(keras_model(keras.applications.vgg16.preprocess_input(gray * 255.0)))
  reference = reference.mean(axis=(1, 2))
  _, captured = state.model.apply(state.variables(), jnp.asarray(L / 50 - 1, jnp.float32),
                                  capture_intermediates=True, mutable=['intermediates'])
  ours = captured['intermediates']['vgg']['__call__'][0].mean(axis=(1, 2))
  assert sees_its_input(reference) and relative_error(ours, reference) <= 1e-4
  # Frozen (the default): one step changes every other param and no VGG16 param, and Adam
  # keeps moments for the others only.
  before, after = train_one_step(config, network.pretrained(experiment.frozen(config)))
  assert not any(changed(before.params['vgg'], after.params['vgg']).values())
  rest = lambda state: {k: v for k, v in state.params.items() if k != 'vgg'}
  assert all(changed(rest(before), rest(after)).values())
  assert moments(after.opt_state) == 2 * sizes(rest(before))


def test_no_vgg_weights_is_one_warning_and_random_init(tmp_path, monkeypatch, caplog):
  monkeypatch.setenv('KERAS_HOME', str(tmp_path))
  with caplog.at_level(logging.WARNING):
    assert network.pretrained(experiment.frozen(fusion_config())) is None
  (record,) = caplog.records
  assert record.getMessage() == (
      'config.model.vgg_weights is empty and vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 '
      f'is not in {tmp_path}/models, so the VGG16 branch starts from random weights.')


def test_total_stride_covers_the_encoder_and_vgg16():
  assert network.total_stride(fusion_config()) == 32
  assert network.total_stride(fusion_config(vgg_features='fc2')) == 8
  config = fusion_config(vgg_features='fc2')
  config.image_size = 36
  with pytest.raises(validation.ConfigError, match='total stride of 8, so use a multiple of 8'):
    experiment.validate(config)
