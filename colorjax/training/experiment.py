"""The experiment config as a whole: every field a training run reads, checked before anything
compiles or any folder is created (one sentence naming the field and the allowed values)."""
import os

import jax
import ml_collections

from colorjax import tasks
from colorjax.core import metrics, optim
from colorjax.core.validation import (ConfigError, check_choice, check_number, get_field,
                                      validate_data)

DTYPES = ('float32', 'bfloat16')


def validate(config, devices=None):
  """Every field a training run reads; the batch must split over this run's devices (or over
  ``devices`` of them: a topology compiled for elsewhere)."""
  check_choice(config, 'task', tasks.TASKS)
  check_choice(config, 'compute_dtype', DTYPES)
  for field in ('num_steps', 'log_every', 'eval_every', 'checkpoint_every', 'keep_checkpoints'):
    check_number(config, field, low=1, integer=True)
  check_number(config, 'keep_best', low=0, integer=True)
  check_choice(config, 'skip_nonfinite', (False, True))
  profile = get_field(config, 'profile_steps')
  if not (isinstance(profile, (tuple, list)) and len(profile) == 2
          and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in profile)):
    raise ConfigError(f'config.profile_steps={profile!r} is not allowed; use (first step, '
                      'count), two integers >= 0.')
  if profile[1] and sum(profile) > config.num_steps:
    raise ConfigError(f'config.profile_steps={tuple(profile)!r} is not allowed; the window must '
                      f'end by num_steps={config.num_steps}.')
  check_choice(config, 'best_metric', tuple(metrics.RANKING))
  check_number(config, 'optim.lr', low=0, low_open=True)
  check_number(config, 'optim.b1', low=0, high=1, high_open=True)
  check_number(config, 'optim.b2', low=0, high=1, high_open=True)
  check_choice(config, 'optim.schedule', optim.SCHEDULES)
  check_number(config, 'optim.warmup_steps', low=0, integer=True)
  check_number(config, 'optim.decay_start', low=0, high=1)
  check_number(config, 'optim.clip_norm', low=0)
  validate_data(config)
  devices = devices or jax.device_count()
  if config.batch_size % devices:
    raise ConfigError(f'config.batch_size={config.batch_size} is not allowed; use a multiple '
                      f'of the {devices} devices.')
  init_from = get_field(config, 'init_from')
  if init_from and not os.path.isdir(init_from):
    raise ConfigError(f'config.init_from={init_from!r} is not allowed; use the workdir of an '
                      'earlier run or one of its checkpoint folders.')
  tasks.get(config.task).validate(config)


def frozen(config):
  """A read-only copy (hashable, so the jitted step can hold it as static data)."""
  return ml_collections.FrozenConfigDict(config)
