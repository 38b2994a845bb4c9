"""CycleGAN colorization from unpaired data: domain A gray images, domain B colour images.

Images live in normalised Lab: an A image is its L (1 channel), a B image its (L, ab) (3
channels). G_AB ('ab') predicts ab from L and keeps L, so fake B = (L, G_AB(L)); G_BA ('ba')
predicts L from (L, ab). D_A ('a') judges L maps, D_B ('b') Lab images.

Losses (Zhu et al.): LSGAN by default; cycle consistency cycle_weight · (|G_BA(G_AB(a)) - a| +
|G_AB'(G_BA(b)) - b|), where the B -> A -> B reconstruction is (G_BA(b), G_AB(G_BA(b))); and
identity. The identity loss asks a generator to leave an image of its target domain alone; the
domains differ in channels here, so it is defined where that has a meaning: a gray image
written as a B image is (L, 0, 0), and G_BA must return its L (weight cycle_weight ·
identity_weight). G_AB's identity, keeping the lightness of what it colours, holds by
construction. One Adam moves both generators, then one moves both discriminators, which see
the fakes through image pools of pool_size earlier fakes (in ``state.extra``).
"""
import jax
import jax.numpy as jnp

from colorjax.core import color, losses, validation
from colorjax.tasks import gan, image_pool, network
from colorjax.tasks.inputs import rgb_and_lab

INIT_FROM_BRANCH = gan.INIT_FROM_BRANCH
GENERATORS = ('unet', 'resnet')   # the networks that take any input channels
HEAD = {'join_l': False, 'output_activation': 'tanh'}
total_stride = network.total_stride


def pretrained(config):
  del config
  return None


def init(rng, config, image_shape, weights=None):
  del weights
  L, lab = jnp.zeros((1, *image_shape, 1)), jnp.zeros((1, *image_shape, 3))
  discriminator = gan.build_discriminator(config)
  size = config.gan.pool_size
  pools = {'a': image_pool.init(size, (*image_shape, 1)),
           'b': image_pool.init(size, (*image_shape, 3))}
  return gan.init(rng, config, {
      ('generator', 'ab'): (network.build(config, out_channels=2, **HEAD), L),
      ('generator', 'ba'): (network.build(config, out_channels=1, **HEAD), lab),
      ('discriminator', 'a'): (discriminator, L),
      ('discriminator', 'b'): (discriminator, lab)}, extra={'pools': pools})


def _domains(batch):
  """(A: normalised L [N, H, W, 1], B: normalised Lab [N, H, W, 3]) of an unpaired batch."""
  a = color.normalize_l(color.split_lab(rgb_and_lab(batch, 'a')[1])[0])
  L, ab = color.split_lab(rgb_and_lab(batch, 'b')[1])
  return a, jnp.concatenate([color.normalize_l(L), color.normalize_ab(ab)], axis=-1)


def cycle_terms(g_ab, g_ba, real_a, real_b):
  """(fake A, fake B, {'cycle_a', 'cycle_b', 'identity'} L1 terms) of the generators
  ``g_ab`` (L -> ab) and ``g_ba`` (Lab -> L) on real A (L) and real B (Lab) images."""
  fake_b = jnp.concatenate([real_a, g_ab(real_a)], axis=-1)
  fake_a = g_ba(real_b)
  rec_a = g_ba(fake_b)
  rec_b = jnp.concatenate([fake_a, g_ab(fake_a)], axis=-1)
  gray_as_b = jnp.concatenate([real_a, jnp.zeros_like(real_b[..., 1:])], axis=-1)
  return fake_a, fake_b, {'cycle_a': losses.l1(rec_a, real_a),
                          'cycle_b': losses.l1(rec_b, real_b),
                          'identity': losses.l1(g_ba(gray_as_b), real_a)}


def train_step(state, batch):
  """G_AB and G_BA step, then D_A and D_B step on pooled fakes."""
  config = state.config.gan
  objective, epsilon = config.objective, config.epsilon
  models, stats = state.model, state.batch_stats
  real_a, real_b = _domains(batch)
  keys = iter(gan.step_keys(state, 16))

  def g_objective(params):
    g_stats = dict(stats['generator'])

    def run(name):
      def generator(x):
        out, g_stats[name] = gan.forward(models['generator'][name], params[name],
                                         g_stats[name], x, next(keys))
        return out
      return generator

    fake_a, fake_b, terms = cycle_terms(run('ab'), run('ba'), real_a, real_b)
    for domain, fake in (('a', fake_a), ('b', fake_b)):
      # D in training mode, its updated statistics thrown away.
      logits, _ = gan.forward(models['discriminator'][domain],
                              state.params['discriminator'][domain],
                              stats['discriminator'][domain], fake, next(keys))
      terms[f'g_adv_{domain}'] = losses.generator_loss(objective, logits, epsilon)
    cycle = config.cycle_weight
    loss = (terms['g_adv_a'] + terms['g_adv_b'] + cycle * (terms['cycle_a'] + terms['cycle_b'])
            + cycle * config.identity_weight * terms['identity'])
    return loss, (terms, g_stats, fake_a, fake_b)

  (g_loss, (g_terms, g_stats, fake_a, fake_b)), g_grads = jax.value_and_grad(
      g_objective, has_aux=True)(state.params['generator'])
  state, g_grad_norm = gan.update(state, 'generator', g_grads, g_stats)

  pools, shown = {}, {}
  for domain, fake in (('a', fake_a), ('b', fake_b)):
    shown[domain], pools[domain] = image_pool.query(
        state.extra['pools'][domain], jax.lax.stop_gradient(fake), next(keys))
  reals = {'a': real_a, 'b': real_b}

  def d_objective(params):
    d_stats, loss, metrics = dict(stats['discriminator']), 0.0, {}
    for domain in ('a', 'b'):
      model = models['discriminator'][domain]
      real_logits, d_stats[domain] = gan.forward(model, params[domain], d_stats[domain],
                                                 reals[domain], next(keys))
      fake_logits, d_stats[domain] = gan.forward(model, params[domain], d_stats[domain],
                                                 shown[domain], next(keys))
      metrics[f'd_loss_{domain}'] = losses.discriminator_loss(objective, real_logits,
                                                              fake_logits, epsilon)
      metrics.update(gan.discriminator_metrics(objective, real_logits, fake_logits,
                                               f'_{domain}'))
      loss = loss + metrics[f'd_loss_{domain}']
    return loss, (d_stats, metrics)

  (d_loss, (d_stats, d_metrics)), d_grads = jax.value_and_grad(d_objective, has_aux=True)(
      state.params['discriminator'])
  state, d_grad_norm = gan.update(state, 'discriminator', d_grads, d_stats)
  state = state.replace(step=state.step + 1, extra={'pools': pools})
  return state, {'g_loss': g_loss, 'd_loss': d_loss, **g_terms, **d_metrics,
                 'g_grad_norm': g_grad_norm, 'd_grad_norm': d_grad_norm}


def predict(state, L):
  """L in Lab units [N, H, W, 1] -> G_AB's ab in Lab units."""
  ab = gan.apply(state.model['generator']['ab'], state, ('generator', 'ab'),
                 color.normalize_l(L))
  return color.denormalize_ab(ab)


def eval_step(state, batch):
  return network.eval_sums(predict, state, batch)


def validate(config):
  validation.check_choice(config, 'model.name', GENERATORS)
  if config.data.pairing != 'unpaired':
    raise validation.ConfigError(
        f"config.data.pairing={config.data.pairing!r} is not allowed; task 'cyclegan' trains "
        "on unpaired batches, so use 'unpaired'.")
  network.validate(config, head_fields=(('output_activation', HEAD['output_activation']),))
  validation.check_choice(config, 'gan.discriminator', ('patchgan',))
  gan.validate(config)
  for field in ('gan.cycle_weight', 'gan.identity_weight'):
    validation.check_number(config, field, low=0)
  validation.check_number(config, 'gan.pool_size', low=0, integer=True)
