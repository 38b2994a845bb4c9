"""Conditional GAN colorization (pix2pix; with gan.discriminator='vgg', the VGG16-GAN).

The generator is a regression network (any ``config.model``: the U-Net presets, or the
VGG16-encoder U-Net) mapping L to ab, so a regression run can warm-start it through
``config.init_from``. The discriminator sees (L, ab) of real or generated colour. One step
first updates D on the real batch and the generated one (passed separately, as pix2pix
does), then G on adversarial + l1_weight · L1(ab); G's forward pass is shared by both.
"""
import jax
import jax.numpy as jnp

from colorjax.core import color, losses, validation
from colorjax.tasks import gan, network, regression
from colorjax.tasks.inputs import rgb_and_lab

INIT_FROM_BRANCH = gan.INIT_FROM_BRANCH
total_stride = network.total_stride


def pretrained(config):
  """VGG16 weights for a VGG16-encoder generator ({'generator': {...}}), else None."""
  weights = network.pretrained(config)
  return {'generator': weights} if weights else None


def init(rng, config, image_shape, weights=None):
  L = jnp.zeros((1, *image_shape, 1))
  return gan.init(rng, config, {
      ('generator',): (regression.build_model(config), L),
      ('discriminator',): (gan.build_discriminator(config), jnp.zeros((1, *image_shape, 3)))},
      weights)


def train_step(state, batch):
  """D step, then G step; metrics of both networks."""
  objective, epsilon = state.config.gan.objective, state.config.gan.epsilon
  generator, discriminator = state.model['generator'], state.model['discriminator']
  _, lab = rgb_and_lab(batch)
  L, ab = color.split_lab(lab)
  L, target = color.normalize_l(L), color.normalize_ab(ab)
  g_key, real_key, fake_key, adv_key = gan.step_keys(state, 4)

  def generate(params):
    output, stats = gan.forward(generator, params, state.batch_stats['generator'], L, g_key)
    return regression.output_to_ab(output, generator), stats

  fake_ab, pull_back, g_stats = jax.vjp(generate, state.params['generator'], has_aux=True)
  real = jnp.concatenate([L, target], axis=-1)
  fake = jax.lax.stop_gradient(jnp.concatenate([L, fake_ab], axis=-1))

  def d_objective(params):
    stats = state.batch_stats['discriminator']
    real_logits, stats = gan.forward(discriminator, params, stats, real, real_key)
    fake_logits, stats = gan.forward(discriminator, params, stats, fake, fake_key)
    loss = losses.discriminator_loss(objective, real_logits, fake_logits, epsilon)
    return loss, (stats, gan.discriminator_metrics(objective, real_logits, fake_logits))

  (d_loss, (d_stats, d_metrics)), d_grads = jax.value_and_grad(d_objective, has_aux=True)(
      state.params['discriminator'])
  state, d_grad_norm = gan.update(state, 'discriminator', d_grads, d_stats)

  def g_objective(fake_ab):
    # D in training mode (its batch statistics), its updated statistics thrown away.
    logits, _ = gan.forward(discriminator, state.params['discriminator'],
                            state.batch_stats['discriminator'],
                            jnp.concatenate([L, fake_ab], axis=-1), adv_key)
    terms = {'g_adv': losses.generator_loss(objective, logits, epsilon),
             'g_l1': losses.l1(fake_ab, target)}
    return terms['g_adv'] + state.config.gan.l1_weight * terms['g_l1'], terms

  (g_loss, g_terms), fake_grads = jax.value_and_grad(g_objective, has_aux=True)(fake_ab)
  state, g_grad_norm = gan.update(state, 'generator', pull_back(fake_grads)[0], g_stats)
  state = state.replace(step=state.step + 1)
  return state, {'d_loss': d_loss, 'g_loss': g_loss, **g_terms, **d_metrics,
                 'd_grad_norm': d_grad_norm, 'g_grad_norm': g_grad_norm}


def predict(state, L):
  """L in Lab units [N, H, W, 1] -> the generator's ab in Lab units."""
  generator = state.model['generator']
  output = gan.apply(generator, state, ('generator',), color.normalize_l(L))
  return color.denormalize_ab(regression.output_to_ab(output, generator))


def eval_step(state, batch):
  return network.eval_sums(predict, state, batch)


def validate(config):
  network.validate(config)
  gan.validate(config)
  validation.check_number(config, 'gan.l1_weight', low=0)
