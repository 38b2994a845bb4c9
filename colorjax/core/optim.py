"""Optax Adam with the learning-rate schedules and clipping a config asks for."""
import optax

SCHEDULES = ('constant', 'warmup', 'linear', 'cosine', 'constant_then_linear')


def schedule(optim, num_steps):
  """lr(step): constant, linear warm-up then constant, warm-up then linear decay to zero at
  num_steps, warm-up then cosine decay, or constant until decay_start · num_steps then linear
  decay to zero at num_steps (CycleGAN's)."""
  lr, warmup = optim.lr, optim.warmup_steps
  if optim.schedule == 'constant':
    return optax.constant_schedule(lr)
  if optim.schedule == 'constant_then_linear':
    hold = round(optim.decay_start * num_steps)
    return optax.join_schedules(
        [optax.constant_schedule(lr), optax.linear_schedule(lr, 0.0, max(num_steps - hold, 1))],
        [hold])
  if optim.schedule == 'cosine':
    return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(num_steps, warmup + 1))
  ramp = optax.linear_schedule(0.0, lr, warmup) if warmup else optax.constant_schedule(lr)
  tail = (optax.constant_schedule(lr) if optim.schedule == 'warmup'
          else optax.linear_schedule(lr, 0.0, max(num_steps - warmup, 1)))
  return optax.join_schedules([ramp, tail], [warmup])


def adam(optim, num_steps):
  """Adam(lr schedule, b1, b2), after global-norm clipping when optim.clip_norm > 0."""
  tx = optax.adam(schedule(optim, num_steps), b1=optim.b1, b2=optim.b2)
  return optax.chain(optax.clip_by_global_norm(optim.clip_norm), tx) if optim.clip_norm else tx
