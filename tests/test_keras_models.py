"""VGG16 and InceptionV3 against Keras: random-weight Keras models saved in each weight-file
layout, loaded into Flax, same activations. No download anywhere."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorjax.core import color
from colorjax.core.validation import UserError
from colorjax.models import inception, keras_weights, vgg

keras = pytest.importorskip('keras')
h5py = pytest.importorskip('h5py')
from keras_reference import (  # noqa: E402  (imports Keras)
    FORMATS, TOLERANCE, images01, randomise, relative_error, save_all, sees_its_input)


@pytest.fixture(scope='module')
def vgg_notop(tmp_path_factory):
  model = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
  randomise(model, 0)
  return model, save_all(model, tmp_path_factory.mktemp('vgg_notop'), keras1=True)


@pytest.fixture(scope='module')
def vgg_top(tmp_path_factory):
  model = keras.applications.VGG16(weights=None, include_top=True, classifier_activation=None)
  randomise(model, 1)
  return model, save_all(model, tmp_path_factory.mktemp('vgg_top'), keras1=True)


def keras_input(rgb, keras_preprocess, our_preprocess, atol):
  """Keras's preprocessed input for RGB in [0, 1], after checking ours gives the same."""
  x = keras_preprocess(rgb * 255.0)
  np.testing.assert_allclose(our_preprocess(jnp.asarray(rgb)), x, atol=atol)
  return x


def assert_matches(ours, reference):
  assert sees_its_input(reference)  # random weights that ignore the input would prove nothing
  assert relative_error(ours, reference) <= TOLERANCE


@pytest.mark.parametrize('fmt', FORMATS)
def test_vgg16_notop_matches_keras(vgg_notop, fmt):
  model, paths = vgg_notop
  x = keras_input(images01((2, 32, 32, 3), 3), keras.applications.vgg16.preprocess_input,
                  vgg.preprocess, atol=1e-4)
  ours = jax.jit(vgg.VGG16().apply)({'params': vgg.load_params(paths[fmt])}, x)
  assert_matches(ours, model(x, training=False))


@pytest.mark.parametrize('fmt', FORMATS)
def test_vgg16_logits_match_keras(vgg_top, fmt):
  model, paths = vgg_top
  x = keras.applications.vgg16.preprocess_input(images01((1, 224, 224, 3), 4) * 255.0)
  params = vgg.load_params(paths[fmt], include_top=True)
  ours = jax.jit(vgg.VGG16(include_top=True, outputs=('fc2', 'logits')).apply)(
      {'params': params}, x)
  assert ours['fc2'].shape == (1, 4096)
  assert relative_error(ours['logits'], model(x, training=False)) <= TOLERANCE


def test_vgg16_outputs_stop_at_the_deepest_requested_layer():
  model = vgg.VGG16(outputs=('block1_conv2', 'block2_pool'))
  variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3))))
  assert set(variables['params']) == {'block1_conv1', 'block1_conv2', 'block2_conv1',
                                      'block2_conv2'}
  out = jax.eval_shape(model.apply, variables, jnp.zeros((1, 32, 32, 3)))
  assert out['block2_pool'].shape == (1, 8, 8, 128)
  with pytest.raises(ValueError, match='fc1'):
    vgg.VGG16(outputs=('fc1',)).init(jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)))


def test_gray_input_is_the_gray_picture_of_l():
  gray = np.repeat(images01((2, 8, 8, 1), 5), 3, axis=-1)
  L = color.normalize_l(color.rgb_to_lab(jnp.asarray(gray))[..., :1])
  np.testing.assert_allclose(vgg.gray_input(L), vgg.preprocess(jnp.asarray(gray)), atol=0.01)


@pytest.mark.parametrize('fmt', FORMATS)
def test_inception_v3_matches_keras(keras_inception, fmt):
  model, paths = keras_inception
  x = keras_input(images01((2, 75, 75, 3), 6), keras.applications.inception_v3.preprocess_input,
                  inception.preprocess, atol=1e-6)
  ours = jax.jit(inception.InceptionV3().apply)(inception.load_params(paths[fmt]), x)
  assert ours.shape == (2, inception.FEATURES)
  assert_matches(ours, model(x, training=False))


def test_inception_features_resize_uint8_images_to_299(keras_inception):
  model, paths = keras_inception
  images = (images01((1, 40, 56, 3), 7) * 255).round().astype(np.uint8)
  resized = inception.resize_for_inception(jnp.asarray(images / 255.0, jnp.float32))
  reference = model(keras.applications.inception_v3.preprocess_input(
      np.asarray(resized) * 255.0), training=False)
  ours = inception.features(inception.load_params(paths['legacy']), jnp.asarray(images))
  assert ours.dtype == jnp.float32
  assert relative_error(ours, reference) <= TOLERANCE


def test_missing_weights_name_the_file_the_cache_and_the_url(tmp_path, monkeypatch):
  monkeypatch.setenv('KERAS_HOME', str(tmp_path))
  with pytest.raises(UserError) as error:
    keras_weights.find_weights(keras_weights.VGG16_NOTOP, str(tmp_path / 'nowhere.h5'),
                               setting='config.model.vgg_weights')
  message = str(error.value)
  for part in ('nowhere.h5', keras_weights.VGG16_NOTOP, str(tmp_path / 'models'),
               'config.model.vgg_weights', keras_weights.URLS[keras_weights.VGG16_NOTOP]):
    assert part in message
  assert message.count('. ') == 0 and message.endswith('.')
  cached = tmp_path / 'models' / keras_weights.VGG16_NOTOP
  cached.parent.mkdir()
  cached.write_bytes(b'')
  assert keras_weights.find_weights(keras_weights.VGG16_NOTOP) == str(cached)


def test_unusable_files_say_what_is_wrong(vgg_notop, tmp_path):
  _, paths = vgg_notop
  with pytest.raises(UserError, match="has no layer 'fc1'"):
    vgg.load_params(paths['legacy'], include_top=True)
  with pytest.raises(UserError, match='0 conv2d and 0 batch_normalization layers, expected 94'):
    inception.load_params(paths['keras3'])
  corrupt = tmp_path / 'corrupt.h5'
  corrupt.write_bytes(b'not an hdf5 file')
  with pytest.raises(UserError, match='not a readable Keras weight file'):
    keras_weights.read_h5(str(corrupt))
  wrong = tmp_path / 'wrong.h5'
  with h5py.File(wrong, 'w') as f:
    f.attrs['layer_names'] = [b'block1_conv1']
    f['block1_conv1/block1_conv1_W_1:0'] = np.zeros((3, 3, 3, 32), np.float32)
    f['block1_conv1/block1_conv1_b_1:0'] = np.zeros(32, np.float32)
    f['block1_conv1'].attrs['weight_names'] = [b'block1_conv1_W_1:0', b'block1_conv1_b_1:0']
  with pytest.raises(UserError, match=r"'block1_conv1' has weights of shapes \[\(3, 3, 3, 32\), "
                                      r"\(32,\)\], expected \[\(3, 3, 3, 64\), \(64,\)\]"):
    vgg.load_params(str(wrong))
