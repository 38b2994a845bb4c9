"""compute_dtype='bfloat16': bf16 convolutions and activations, float32 params, optimiser state
and losses; the first step stays close to float32 and training still lowers the loss."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorjax import tasks, validation
from conftest import colour_image, load_config

CONFIGS = ['default']


def tiny(name, dtype):
  config = load_config(name)
  config.image_size, config.batch_size = 32, 4
  config.compute_dtype = dtype
  if config.model.get('name', 'unet') == 'unet':
    config.model.features = (8, 16)
  validation.validate(config)
  return validation.frozen(config)


def train_steps(config, batch, steps):
  task = tasks.get(config.task)
  state = task.init(jax.random.PRNGKey(0), config, (config.image_size,) * 2)
  step = jax.jit(task.train_step)
  losses = []
  for _ in range(steps):
    state, metrics = step(state, batch)
    losses.append(float(metrics['loss']))
  return state, losses


@pytest.mark.parametrize('name', CONFIGS)
def test_bfloat16_keeps_float32_state_and_trains_like_float32(name):
  batch = {'rgb': jnp.asarray(np.stack([colour_image(40 + i, size=(32, 32)) for i in range(4)]))}
  state16, losses16 = train_steps(tiny(name, 'bfloat16'), batch, 15)
  _, losses32 = train_steps(tiny(name, 'float32'), batch, 15)
  leaves = jax.tree.leaves((state16.params, state16.batch_stats, state16.opt_state))
  assert {x.dtype for x in leaves if jnp.issubdtype(x.dtype, jnp.floating)} == {
      jnp.dtype(jnp.float32)}
  np.testing.assert_allclose(losses16[0], losses32[0], rtol=0.03)
  assert losses16[-1] < 0.95 * losses16[0], losses16
  np.testing.assert_allclose(losses16[-1], losses32[-1], rtol=0.05)
