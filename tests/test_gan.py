"""The GAN families: objectives against float64 references, the image pool, the cycle terms,
that each network group is updated alone, and each GAN config training end to end."""
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorjax import tasks
from colorjax.core import losses, parallel, validation
from colorjax.models import patchgan
from colorjax.tasks import cyclegan, gan, image_pool
from colorjax.training import checkpoint, experiment, runs, train
from colorjax.training.benchmark import synthetic_batch
from conftest import load_config


def gan_config(file, **overrides):
  """configs/FILE.py:demo at test size: 32² (64² for the VGG discriminator), batch 2."""
  config = load_config(file, 'demo')
  config.image_size = 64 if config.gan.discriminator == 'vgg' else 32
  config.batch_size = 2
  config.model.features = (4, 8) if file == 'cgan' else (4, 4, 8, 8, 8)
  config.model.width, config.model.blocks, config.model.convs_per_block = 4, 1, 1
  config.gan.d_features, config.gan.d_head = 4, (8,)
  config.gan.pool_size = 3
  for field, value in overrides.items():
    *parents, name = field.split('__')
    node = config
    for parent in parents:
      node = node[parent]
    node[name] = value
  return config


def fresh(config):
  experiment.validate(config)
  config = experiment.frozen(config)
  task, mesh = tasks.get(config.task), parallel.make_mesh()
  state = runs.init_state(task, config, mesh)
  return task, state, synthetic_batch(config, mesh), train.jitted_train_step(task, config, mesh)


def _sigmoid64(x):
  return 1.0 / (1.0 + np.exp(-x))


def test_gan_objectives_match_float64_references():
  rng = np.random.default_rng(0)
  real, fake = rng.normal(0, 3, (4, 5, 5, 1)), rng.normal(0, 3, (4, 5, 5, 1))
  r32, f32 = jnp.asarray(real, jnp.float32), jnp.asarray(fake, jnp.float32)
  expected_d = {
      'vanilla': 0.5 * (np.mean(-np.log(_sigmoid64(real)))
                        + np.mean(-np.log(1 - _sigmoid64(fake)))),
      'lsgan': 0.5 * (np.mean((real - 1) ** 2) + np.mean(fake ** 2)),
      'hinge': 0.5 * (np.mean(np.maximum(0, 1 - real)) + np.mean(np.maximum(0, 1 + fake)))}
  expected_g = {'vanilla': np.mean(-np.log(_sigmoid64(fake))),
                'lsgan': np.mean((fake - 1) ** 2), 'hinge': -np.mean(fake)}
  for objective in losses.GAN_OBJECTIVES:
    np.testing.assert_allclose(losses.discriminator_loss(objective, r32, f32),
                               expected_d[objective], rtol=1e-5, err_msg=objective)
    np.testing.assert_allclose(losses.generator_loss(objective, f32), expected_g[objective],
                               rtol=1e-5, err_msg=objective)
  eps = 1e-3
  np.testing.assert_allclose(losses.generator_loss('vanilla', f32, eps),
                             np.mean(-np.log(_sigmoid64(fake) + eps)), rtol=1e-5)
  # From logits, a confident discriminator gives finite losses and gradients; the
  # probability form without epsilon would give inf.
  extreme = jnp.asarray([[-200.0, 200.0]])
  value, grad = jax.value_and_grad(lambda x: losses.generator_loss('vanilla', x))(extreme)
  assert np.isfinite(float(value)) and np.all(np.isfinite(grad))
  np.testing.assert_allclose(value, 100.0, rtol=1e-6)


def test_patchgan_sees_70_pixel_patches_and_needs_its_minimum_size():
  model = patchgan.PatchGAN(features=4, n_layers=3)
  variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 96, 96, 3)))
  x = jax.random.normal(jax.random.PRNGKey(1), (1, 96, 96, 3))
  grad = jax.grad(lambda x: model.apply(variables, x)[0, 4, 4, 0])(x)   # a patch inside x
  rows = np.flatnonzero(np.abs(np.asarray(grad[0])).sum(axis=(1, 2)))
  assert rows.max() - rows.min() + 1 == patchgan.receptive_field(3) == 70
  smallest = patchgan.min_size(3)
  assert model.apply(variables, jnp.zeros((1, smallest, smallest, 3))).shape[1] == 1
  assert model.apply(variables, jnp.zeros((1, smallest - 1, smallest - 1, 3))).shape[1] == 0


def test_image_pool_fills_then_returns_stored_fakes_half_the_time():
  size, shape = 5, (2, 2, 1)
  pool = image_pool.init(size, shape)
  fakes = jnp.arange(1, 4, dtype=jnp.float32)[:, None, None, None] * jnp.ones(shape)
  shown, pool = image_pool.query(pool, fakes, jax.random.PRNGKey(0))
  np.testing.assert_array_equal(shown, fakes)           # filling: the new fakes pass
  assert int(pool['count']) == 3
  query = jax.jit(image_pool.query)
  from_pool, total, stored = 0, 0, set(range(1, 4))
  for i in range(400):
    fakes = (100 + 4 * i + jnp.arange(4, dtype=jnp.float32))[:, None, None, None] * jnp.ones(
        shape)
    shown, pool = query(pool, fakes, jax.random.PRNGKey(i + 1))
    assert pool['images'].shape == (size, *shape) and int(pool['count']) == size
    for new, out in zip(np.asarray(fakes)[:, 0, 0, 0], np.asarray(shown)[:, 0, 0, 0]):
      assert out == new or out in stored or 100 + 4 * i <= out < new
      from_pool += out != new
      total += 1
    stored = set(np.asarray(pool['images'])[:, 0, 0, 0].tolist())
  # The 2 fakes that fill the pool pass for sure; after that, a binomial(1598, 1/2).
  assert abs(from_pool / (total - 2) - 0.5) < 4 * np.sqrt(0.25 / total)


def test_cycle_loss_is_zero_for_identity_generators_and_measures_a_shift():
  rng = np.random.default_rng(0)
  real_a = jnp.asarray(rng.uniform(-1, 1, (2, 8, 8, 1)), jnp.float32)
  real_b = jnp.asarray(rng.uniform(-1, 1, (2, 8, 8, 3)), jnp.float32)
  keep_l = lambda lab: lab[..., :1]            # G_BA: the identity on the shared L channel
  b_colours = lambda L: real_b[..., 1:]        # G_AB: returns B's own ab
  _, _, terms = cyclegan.cycle_terms(b_colours, keep_l, real_a, real_b)
  for name, value in terms.items():
    assert float(value) == 0.0, name
  _, _, terms = cyclegan.cycle_terms(b_colours, lambda lab: lab[..., :1] + 0.25, real_a, real_b)
  # A -> B -> A is off by 0.25; B -> A -> B's L by 0.25 in one of its 3 channels.
  np.testing.assert_allclose([terms['cycle_a'], terms['cycle_b'], terms['identity']],
                             [0.25, 0.25 / 3, 0.25], rtol=1e-6)


@pytest.mark.parametrize('file', ['cgan', 'cyclegan'])
def test_an_update_of_one_group_leaves_the_other_untouched(file):
  _, state, _, _ = fresh(gan_config(file))
  update = jax.jit(gan.update, static_argnums=1)
  for group in gan.GROUPS:
    other = [g for g in gan.GROUPS if g != group][0]
    grads = jax.tree.map(jnp.ones_like, state.params[group])
    moved, _ = update(state, group, grads, state.batch_stats[group])
    for a, b in zip(jax.tree.leaves(state.params[group]), jax.tree.leaves(moved.params[group])):
      assert np.all(np.asarray(a) != np.asarray(b)), group
    for a, b in zip(jax.tree.leaves((state.params[other], state.opt_state[other])),
                    jax.tree.leaves((moved.params[other], moved.opt_state[other]))):
      np.testing.assert_array_equal(a, b, err_msg=other)


def test_pix2pix_updates_the_discriminator_before_the_generator():
  """D's update sees the fakes of the generator before its update and none of G's losses: the
  same step with another l1_weight moves G differently and D identically."""
  after = {}
  for l1_weight in (0.0, 50.0):
    _, state, batch, step = fresh(gan_config('cgan', gan__l1_weight=l1_weight))
    after[l1_weight] = jax.device_get(step(state, batch)[0].params)
  for a, b in zip(jax.tree.leaves(after[0.0]['discriminator']),
                  jax.tree.leaves(after[50.0]['discriminator'])):
    np.testing.assert_array_equal(a, b)
  assert any(np.any(a != b) for a, b in zip(jax.tree.leaves(after[0.0]['generator']),
                                            jax.tree.leaves(after[50.0]['generator'])))


def _arrays(state):
  return jax.device_get({'params': state.params, 'batch_stats': state.batch_stats,
                         'opt_state': state.opt_state, 'extra': state.extra})


@pytest.mark.parametrize('file', ['cgan', 'vgg_gan', 'cyclegan'])
def test_each_gan_config_trains_both_networks_and_resumes_exactly(file, tmp_path):
  config = gan_config(file, num_steps=4, log_every=1, eval_every=2, checkpoint_every=2)
  initial = jax.device_get(fresh(gan_config(file))[1].params)
  straight = _arrays(train.train_and_evaluate(config, str(tmp_path / 'straight')))
  for group in gan.GROUPS:
    changes = [np.abs(a - b).max() for a, b in zip(jax.tree.leaves(initial[group]),
                                                   jax.tree.leaves(straight['params'][group]))]
    assert min(changes) > 0, f'{group}: a parameter did not move'
  records = [json.loads(line) for line in open(tmp_path / 'straight' / 'metrics.jsonl')]
  logged = set().union(*records)
  for name in ('train/g_loss', 'train/d_loss', 'train/g_grad_norm', 'train/d_grad_norm',
               'eval/ab_error'):
    assert name in logged, name
  assert any(name.startswith('train/d_real') for name in logged)
  assert (tmp_path / 'straight' / 'samples' / 'step_000002.png').is_file()
  # Resume from the step-2 checkpoint: every network, optimiser and image pool continues.
  shutil.copytree(tmp_path / 'straight', tmp_path / 'resumed')
  shutil.rmtree(tmp_path / 'resumed' / 'checkpoints' / '4')
  resumed = _arrays(train.train_and_evaluate(config, str(tmp_path / 'resumed')))
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(straight),
                          jax.tree.leaves(resumed)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=jax.tree_util.keystr(path))
  if file == 'cyclegan':
    assert int(resumed['extra']['pools']['a']['count']) == config.gan.pool_size


def test_the_vgg16_generator_starts_from_keras_vgg16_weights(keras_vgg_file):
  keras_model, path = keras_vgg_file
  config = gan_config('vgg_gan', model__vgg_weights=path)
  config.model.features = None                       # VGG16's own widths and depth
  config.model.convs_per_block = None
  state = fresh(config)[1]
  encoder = state.params['generator']['vgg']
  loaded = 0
  for layer in keras_model.layers:
    if layer.name in encoder:                         # two convs of each block
      for ours, theirs in zip(('kernel', 'bias'), layer.get_weights()):
        np.testing.assert_array_equal(encoder[layer.name][ours], theirs)
      loaded += 1
  assert loaded == 10
  config.model.features = (32, 64, 128, 256, 256)
  with pytest.raises(validation.UserError, match=r'^config.model.vgg_weights does not fit this '
                     r'network: generator/vgg/block1_conv1/bias has shape \(64,\) in the file and '
                     r'\(32,\) here \(keep the VGG16 widths to load its weights\).$'):
    fresh(config)


def test_a_regression_run_warm_starts_the_generator_only(tmp_path):
  regression = gan_config('cgan', task='regression', num_steps=1, checkpoint_every=1,
                          eval_every=1)
  regression.loss = load_config().loss   # the group task 'regression' reads
  trained = jax.device_get(train.train_and_evaluate(regression, str(tmp_path)).params)
  state = fresh(gan_config('cgan'))[1]
  warm = checkpoint.load_params(str(tmp_path), state, tasks.get('paired_gan').INIT_FROM_BRANCH)
  for a, b in zip(jax.tree.leaves(trained), jax.tree.leaves(warm.params['generator'])):
    np.testing.assert_array_equal(a, b)
  for a, b in zip(jax.tree.leaves(state.params['discriminator']),
                  jax.tree.leaves(warm.params['discriminator'])):
    np.testing.assert_array_equal(a, b)
