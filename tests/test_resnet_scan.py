"""The ResNet generator's residual blocks as one nn.scan: the same network as the layer-by-layer
generator colorjax had before (written out here), and runs trained before the change restore,
predict and resume."""
import shutil

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT, colour_image
from colorjax.inference import Colorizer
from colorjax.models import convs, layers, resnet
from colorjax.training import runs, train

BEFORE_SCAN = ROOT / 'tests' / 'data' / 'resnet_before_scan'   # see its README


class LayerByLayer(nn.Module):
  """The generator as colorjax wrote it before the scan: every layer its own module, numbered
  in call order (Conv_0.., norms likewise)."""
  width: int
  blocks: int
  norm: str

  def conv(self, x, features, kernel, train, strides=1, reflect=False, act=True):
    pad = kernel // 2
    conv = convs.ReflectPaddedConv if reflect else convs.Conv
    x = conv(features, (kernel, kernel), strides=(strides, strides),
             padding=((pad, pad), (pad, pad)), use_bias=self.norm == 'none')(x)
    x = layers.norm(self.norm, train, jnp.float32)(x)
    return nn.relu(x) if act else x

  @nn.compact
  def __call__(self, x, train=False):
    x = self.conv(x, self.width, 7, train, reflect=True)
    x = self.conv(x, self.width * 2, 3, train, strides=2)
    x = self.conv(x, self.width * 4, 3, train, strides=2)
    for _ in range(self.blocks):
      x = x + self.conv(self.conv(x, self.width * 4, 3, train, reflect=True), self.width * 4, 3,
                        train, reflect=True, act=False)
    for width in (self.width * 2, self.width):
      x = nn.relu(layers.norm(self.norm, train, jnp.float32)(
          layers.Upsample2x(width, 'transpose', jnp.float32)(x)))
    x = convs.ReflectPaddedConv(2, (7, 7), padding=((3, 3), (3, 3)))(x)
    return jnp.tanh(x)


@pytest.mark.parametrize('norm', ['instance', 'batch', 'none'])
def test_the_scanned_generator_matches_the_layer_by_layer_one_and_its_gradients(norm):
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 16, 16, 1))
  reference = LayerByLayer(width=4, blocks=3, norm=norm)
  scanned = resnet.ResnetGenerator(width=4, blocks=3, norm=norm)
  before = reference.init(jax.random.PRNGKey(0), x)
  variables = {name: resnet.stack_blocks(tree, 3) for name, tree in before.items()}
  assert jax.tree.map(np.shape, variables) == jax.tree.map(
      np.shape, jax.eval_shape(lambda: scanned.init(jax.random.PRNGKey(0), x)))
  for name, tree in variables.items():   # the two layouts convert both ways, exactly
    back = resnet.unstack_blocks(tree, list)
    assert jax.tree.structure(back) == jax.tree.structure(before[name])
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(before[name])):
      np.testing.assert_array_equal(a, b)

  def loss(model, params, state):
    out, updates = model.apply({**state, 'params': params}, x, train=True,
                               mutable=['batch_stats'])
    return jnp.sum(jnp.sin(3 * out)), updates

  (want, want_updates), want_grads = jax.value_and_grad(
      lambda p: loss(reference, p, before), has_aux=True)(before['params'])
  (got, got_updates), got_grads = jax.value_and_grad(
      lambda p: loss(scanned, p, variables), has_aux=True)(variables['params'])
  np.testing.assert_allclose(got, want, rtol=1e-5)
  top = max(float(jnp.abs(g).max()) for g in jax.tree.leaves(want_grads))
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(resnet.stack_blocks(want_grads, 3)),
                          jax.tree.leaves(got_grads)):
    np.testing.assert_allclose(b, a, atol=1e-5 * top, err_msg=jax.tree_util.keystr(path))
  for a, b in zip(jax.tree.leaves(resnet.stack_blocks(want_updates.get('batch_stats', {}), 3)),
                  jax.tree.leaves(got_updates.get('batch_stats', {}))):
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_a_cyclegan_run_from_before_the_scan_predicts_the_same_and_resumes(tmp_path):
  workdir = tmp_path / 'run'
  shutil.copytree(BEFORE_SCAN, workdir)
  expected = np.load(workdir / 'predictions.npz')['rgb']
  colorizer = Colorizer.from_run(str(workdir), resolution=32)
  got = np.stack(colorizer.colorize([colour_image(seed, (40, 48)) for seed in (0, 1)]))
  assert np.abs(got.astype(int) - expected).max() <= 1

  config = runs.read_config(str(workdir))
  config.num_steps = 3
  state = train.train_and_evaluate(config, str(workdir))
  assert int(state.step) == 3
  adam = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(state.opt_state)
          if resnet.BLOCKS in jax.tree_util.keystr(path)]
  assert adam and all(np.abs(np.asarray(leaf)).max() > 0 for leaf in adam
                      if np.ndim(leaf) > 1)   # the moments carried over, stacked, and moved
