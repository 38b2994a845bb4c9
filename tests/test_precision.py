"""compute_dtype='bfloat16' for every model family: bf16 convolutions and activations, float32
params, batch statistics, optimiser state and losses; the first step stays close to float32 and
training still lowers the loss."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorjax import tasks
from colorjax.core import parallel
from colorjax.training import experiment, runs
from conftest import colour_image, load_config

# (config file, its variant, the training metric that must fall: the whole loss, or a GAN's
# reconstruction terms, which fall within a few steps while the adversarial ones need not)
FAMILIES = [('default', '', ('loss',)), ('fusion', 'demo', ('loss',)),
            ('classify', 'demo', ('loss',)), ('cgan', 'demo', ('g_l1',)),
            ('cyclegan', 'demo', ('cycle_a', 'cycle_b'))]


def tiny(file, variant, dtype):
  config = load_config(file, variant)
  config.image_size, config.batch_size = 32, 4
  config.compute_dtype = dtype
  config.optim.schedule = 'constant'
  if config.task == 'classification':
    config.optim.lr = 1e-3   # 261-way cross-entropy: visible progress within 15 steps
  if config.model.name == 'unet':
    config.model.features = (8, 16)
  if config.model.name == 'resnet':
    config.model.width, config.model.blocks = 8, 1
  if 'gan' in config:
    config.gan.d_features = 8
  experiment.validate(config)
  return experiment.frozen(config)


def train_steps(config, batch, steps, tracked):
  task = tasks.get(config.task)
  state = runs.init_state(task, config, parallel.make_mesh())
  step = jax.jit(task.train_step)
  values = []
  for _ in range(steps):
    state, metrics = step(state, batch)
    values.append(sum(float(metrics[name]) for name in tracked))
  return state, values


@pytest.mark.parametrize('file, variant, tracked', FAMILIES, ids=[f[0] for f in FAMILIES])
def test_bfloat16_keeps_float32_state_and_trains_like_float32(file, variant, tracked):
  photos = jnp.asarray(np.stack([colour_image(40 + i, size=(32, 32)) for i in range(8)]))
  config = tiny(file, variant, 'bfloat16')
  batch = ({'a': photos[:4], 'b': photos[4:]} if config.data.pairing == 'unpaired'
           else {'rgb': photos[:4]})
  state16, values16 = train_steps(config, batch, 15, tracked)
  _, values32 = train_steps(tiny(file, variant, 'float32'), batch, 15, tracked)
  leaves = jax.tree.leaves((state16.params, state16.batch_stats, state16.opt_state,
                            state16.extra))
  assert {x.dtype for x in leaves if jnp.issubdtype(x.dtype, jnp.floating)} == {
      jnp.dtype(jnp.float32)}
  np.testing.assert_allclose(values16[0], values32[0], rtol=0.03)
  assert values16[-1] < 0.95 * values16[0], values16
  # the same path down: 15 steps later still within 5% of the starting value of float32's
  assert abs(values16[-1] - values32[-1]) <= 0.05 * values32[0], (values16, values32)
