"""Config validation before anything compiles: one sentence naming the field, the value and
what is allowed."""
import importlib
import math
import numbers
import os
import pkgutil


MAX_RESOLUTION = 8192  # network input side for colorize/export: an 8192² float32 L is 256 MiB


class UserError(ValueError):
  """Something the user can fix, said in one sentence (shown without a traceback)."""


class ConfigError(UserError):
  """A config field with a value colorjax cannot use."""


def get_field(config, field):
  """config['a.b.c'] by dotted path; ConfigError, naming the configs that have it, when it does
  not exist."""
  try:
    return _lookup(config, field)
  except LookupError:
    having = _configs_with(field)
    if not having or 'configs/default.py' in having:
      raise ConfigError(f'config.{field} is missing; add it to the config (see '
                        'configs/default.py).') from None
    names = having[0] if len(having) == 1 else f'{", ".join(having[:-1])} or {having[-1]}'
    raise ConfigError(f'config.{field} is missing; use {names}, whose fields include it.') from None


def _lookup(config, field):
  value = config
  for part in field.split('.'):
    try:
      value = value[part]
    except (KeyError, AttributeError, TypeError):
      raise LookupError(field) from None
  return value


def _configs_with(field):
  """The files in configs/ whose config (no variant) has ``field``."""
  import configs  # the experiment configs, installed with colorjax
  having = []
  for module in pkgutil.iter_modules(configs.__path__):
    try:
      _lookup(importlib.import_module(f'configs.{module.name}').get_config(), field)
      having.append(f'configs/{module.name}.py')
    except LookupError:
      pass
  return having


def check_choice(config, field, allowed):
  value = get_field(config, field)
  if value not in allowed:
    raise ConfigError(f'config.{field}={value!r} is not allowed; use one of '
                      f'{", ".join(repr(a) for a in allowed)}.')


def check_number(config, field, *, low=None, high=None, low_open=False, high_open=False,
                 integer=False):
  """A finite number in [low, high] (or open at either end)."""
  value = get_field(config, field)
  kind = numbers.Integral if integer else numbers.Real
  ok = isinstance(value, kind) and not isinstance(value, bool) and math.isfinite(value)
  if ok and low is not None:
    ok = value > low if low_open else value >= low
  if ok and high is not None:
    ok = value < high if high_open else value <= high
  if not ok:
    left = '(-inf' if low is None else ('(' if low_open else '[') + str(low)
    right = 'inf)' if high is None else str(high) + (')' if high_open else ']')
    what = 'an integer' if integer else 'a number'
    raise ConfigError(f'config.{field}={value!r} is not allowed; use {what} in {left}, {right}.')


def check_source(config, field):
  value = get_field(config, field)
  kind, _, rest = str(value).partition(':')
  if not (value == 'samples' or (kind in ('folder', 'tfds') and rest)):
    raise ConfigError(f"config.{field}={value!r} is not allowed; use 'samples', 'folder:PATH' "
                      "or 'tfds:NAME'.")


def host_memory_bytes():
  return os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')


def check_batch_fits(config):
  """A batch of float32 image_size² crops (what tf.data resamples) must fit in a quarter of
  this host's memory: a larger image_size could only exhaust it, crop after crop."""
  needed = 3 * 4 * config.image_size ** 2 * config.batch_size
  memory = host_memory_bytes()
  if needed > memory // 4:
    largest = math.isqrt(memory // 4 // (12 * config.batch_size))
    raise ConfigError(f'config.image_size={config.image_size} is not allowed; a batch of '
                      f'{config.batch_size} such crops needs {needed / 2**30:.0f} GiB, more than '
                      f'a quarter of this host\'s {memory / 2**30:.0f} GiB, so use at most '
                      f'{largest}.')


def validate_data(config):
  """The fields the input pipeline reads."""
  check_number(config, 'seed', integer=True)
  check_number(config, 'image_size', low=1, integer=True)
  check_number(config, 'batch_size', low=1, integer=True)
  check_batch_fits(config)
  check_source(config, 'data.source')
  check_choice(config, 'data.pairing', ('paired', 'unpaired'))
  check_choice(config, 'data.color_space', ('rgb', 'lab'))
  check_number(config, 'data.eval_fraction', low=0, high=1, high_open=True)
  check_number(config, 'data.max_pixels', low=1, integer=True)
  check_number(config, 'data.grayscale_chroma', low=0)
  check_number(config, 'data.shuffle_buffer', low=1, integer=True)
  check_number(config, 'data.threads', low=0, integer=True)
  scale = get_field(config, 'data.scale_range')
  if not (isinstance(scale, (tuple, list)) and len(scale) == 2
          and all(isinstance(s, numbers.Real) for s in scale) and 0 < scale[0] <= scale[1]):
    raise ConfigError(f'config.data.scale_range={scale!r} is not allowed; use (lo, hi) with '
                      '0 < lo <= hi.')
