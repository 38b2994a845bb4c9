"""The regression task's phased loss: one phase differentiated per step, the same training as
weighting every term by the phase's weight (0 or 1) and differentiating all of them."""
import dm_pix
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorjax.core import color
from colorjax.tasks import network, regression
from conftest import colour_image, load_config


def _state_and_batch(step):
  config = load_config('unet')
  config.image_size, config.batch_size, config.model.features = 32, 2, (4, 8)
  config.loss.switch_step = 3
  state = regression.init(jax.random.PRNGKey(0), config, (32, 32))
  rgb = np.stack([colour_image(i, (32, 32)) for i in range(2)])
  return state.replace(step=jnp.asarray(step, state.step.dtype)), {'rgb': jnp.asarray(rgb)}


def _reference_step(state, batch, weights):
  """Every term computed and weighted (the loss before the phases), straight from dm-pix."""
  rgb = batch['rgb'].astype(jnp.float32) / 255.0
  L, ab = color.split_lab(color.rgb_to_lab(rgb))

  def loss_fn(output):
    ab_norm = regression.output_to_ab(output, state.model)
    l1 = jnp.mean(jnp.abs(ab_norm - color.normalize_ab(ab)))
    predicted = color.join_l_ab(L, color.denormalize_ab(ab_norm))
    ssim = 1.0 - jnp.mean(dm_pix.ssim(predicted, rgb, filter_size=11, filter_sigma=1.5))
    return weights['l1'] * l1 + weights['ssim'] * ssim, {'l1': l1, 'ssim': ssim}
  return network.train_step(state, L, loss_fn)


@pytest.mark.parametrize('step, weights', [(2, {'l1': 1.0, 'ssim': 0.0}),
                                           (3, {'l1': 0.0, 'ssim': 1.0})])
def test_each_phase_trains_as_the_weighted_sum_of_every_term(step, weights):
  state, batch = _state_and_batch(step)
  ours, our_metrics = jax.jit(regression.train_step)(state, batch)
  theirs, their_metrics = jax.jit(lambda s, b: _reference_step(s, b, weights))(state, batch)
  for name in ('loss', 'l1', 'ssim', 'grad_norm'):
    np.testing.assert_allclose(our_metrics[name], their_metrics[name], rtol=1e-5, atol=1e-7)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
               ours.params, theirs.params)


def test_phases_name_every_term():
  config = load_config('unet')
  assert regression.loss_phases(config) == [{'l1': 1.0, 'ssim': 0.0}, {'l1': 0.0, 'ssim': 1.0}]
  config.loss.switch_step = 0   # no switch: switch_weights are not used, nor computed
  assert regression.loss_phases(config) == [{'l1': 1.0}]
