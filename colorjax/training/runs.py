"""A training run on disk: its workdir holds ``config.json`` and ``checkpoints/``.

The one place that builds a run's TrainState and checkpointer, for training and for the
commands that load a trained run (evaluate, colorize, export). No TensorFlow here.
"""
import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import socket
import time

import jax
import ml_collections
from absl import logging

from colorjax import tasks
from colorjax.core import files, metrics, parallel, validation
from colorjax.tasks import network
from colorjax.training import checkpoint, experiment
from configs import default

CONFIG_FILE = 'config.json'
METRICS_FILE = 'metrics.jsonl'
INIT_COMPILER_OPTIONS = {'xla_backend_optimization_level': 0}


@dataclasses.dataclass(frozen=True)
class Run:
  task: object          # the task module
  state: object         # the restored TrainState
  config: object        # the run's (frozen) config
  workdir: str
  step: int


def init_state(task, config, mesh, pretrained=True):
  """A fresh replicated TrainState (jitted init: params are created on the devices), holding
  the task's pretrained weights (read on the host, passed in as arguments, not as constants)
  unless ``pretrained`` is False (a checkpoint is restored over it)."""
  rng = jax.random.PRNGKey(config.seed)
  shape = (config.image_size, config.image_size)
  weights = task.pretrained(config) if pretrained else None
  if weights:  # a file that does not fit the network: one sentence before anything compiles
    network.with_pretrained(jax.eval_shape(lambda r: task.init(r, config, shape), rng).params,
                            weights)
  init = jax.jit(lambda r, w: task.init(r, config, shape, w),
                 out_shardings=parallel.replicated(mesh)).lower(rng, weights)
  # It runs once: on the CPU, XLA's optimisations cost seconds of compiling the random
  # initialisers (9 s of 11 for a tiny U-Net) and save milliseconds of running them.
  cpu = jax.devices()[0].platform == 'cpu'
  return init.compile(INIT_COMPILER_OPTIONS if cpu else None)(rng, weights)


def checkpointer(config, workdir):
  return checkpoint.Checkpointer(
      workdir, keep=config.keep_checkpoints, keep_best=config.keep_best,
      best_metric=config.best_metric, best_mode=metrics.RANKING[config.best_metric])


def write_config(config, workdir):
  """config.json, written whole or not at all (a temporary file renamed over the old one)."""
  if jax.process_index() == 0:
    files.write_whole(os.path.join(workdir, CONFIG_FILE), config.to_json_best_effort(indent=2))


def _fields(config):
  """{dotted field: value} of a config, tuples as JSON lists (as config.json holds them)."""
  def walk(tree, prefix):
    for key, value in tree.items():
      if isinstance(value, dict):
        yield from walk(value, f'{prefix}{key}.')
      else:
        yield f'{prefix}{key}', value
  return dict(walk(json.loads(config.to_json_best_effort()), ''))


def _state_shapes(config):
  """(path, shape, dtype) of every array of the TrainState ``config`` builds (nothing runs)."""
  config = experiment.frozen(config)
  task = tasks.get(config.task)
  shape = (config.image_size, config.image_size)
  state = jax.eval_shape(lambda r: task.init(r, config, shape), jax.random.PRNGKey(0))
  return [(jax.tree_util.keystr(path), leaf.shape, leaf.dtype)
          for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]]


class _Absent:
  """A field one of two configs lacks (a run from before a field moved or was added)."""

  def __repr__(self):
    return '(none)'


_ABSENT = _Absent()


def describe(changed):
  """check_resume's [(field, old, new)] as the log line's text."""
  return '; '.join(f'{field} {old!r} -> {new!r}' for field, old, new in changed)


def check_resume(stored, config, workdir):
  """The fields a resume changes, [(field, stored value, new value)]; one sentence naming the
  first field whose change alone gives the state other shapes (another model, task or
  optimiser structure), which the run's checkpoints cannot restore into."""
  old, new = _fields(stored), _fields(config)
  missing = _ABSENT
  changed = [(k, old.get(k, missing), new.get(k, missing)) for k in sorted(set(old) | set(new))
             if old.get(k, missing) != new.get(k, missing)]
  if not changed:   # the usual resume: nothing to trace
    return changed
  reference = _state_shapes(stored)
  if _state_shapes(config) == reference:
    return changed
  culprit = changed[0][0]
  for field, _, value in changed:
    if field in old and field in new:
      trial = ml_collections.ConfigDict(stored)
      trial.update_from_flattened_dict({field: value})
      try:
        fits = _state_shapes(trial) == reference
      except (KeyError, AttributeError, ValueError):  # the field needs others that changed too
        fits = False
      if not fits:
        culprit = field
        break
  before, after = old.get(culprit, '(none)'), new.get(culprit, '(none)')
  raise validation.ConfigError(
      f'config.{culprit}={after!r} does not fit the run in {workdir}, trained with '
      f'{before!r}: its checkpoints hold another state; resume with the run\'s own value, or '
      'use another workdir.')


class WorkdirLock:
  """One training job per workdir: process 0 holds an exclusive lock on WORKDIR/.lock while it
  trains (the kernel drops it when the process ends, even by kill -9); a second trainer is
  refused in one sentence naming the holder."""

  def __init__(self, workdir):
    self.path = os.path.join(workdir, '.lock')
    self.file = None

  def __enter__(self):
    if jax.process_index() != 0:
      return self
    file = open(self.path, 'a+')
    try:
      fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      file.seek(0)
      holder = file.read().strip() or 'another process'
      file.close()
      raise validation.UserError(f'{os.path.dirname(self.path)} is being trained by {holder}; '
                                 'stop that run first, or use another workdir.') from None
    file.truncate(0)
    file.write(f'process {os.getpid()} on {socket.gethostname()}, started '
               f'{time.strftime("%Y-%m-%d %H:%M:%S")}')
    file.flush()
    self.file = file
    return self

  def __exit__(self, *exc):
    if self.file is not None:
      self.file.close()  # closing releases the lock
      self.file = None


@contextlib.contextmanager
def claim(config, workdir):
  """The workdir for one training job: created, locked, checked against the run it holds (a
  resume that would change the state's shapes is refused before anything is written), with
  ``config`` written to its config.json and the unfinished checkpoints of a killed run removed;
  the lock is held until the block ends."""
  try:
    os.makedirs(workdir, exist_ok=True)
    with WorkdirLock(workdir) as lock:
      stored = (read_config(workdir) if _has_checkpoint(workdir) else None)
      if stored is not None:
        changed = check_resume(stored, config, workdir)
        if changed:
          logging.info('Resuming %s with changed fields: %s.', workdir, describe(changed))
      write_config(config, workdir)
      remove_unfinished(workdir)
      yield lock
  except OSError as e:
    raise validation.UserError(f'Cannot write to the workdir {workdir} ({e.strerror}).') from None


def remove_unfinished(workdir):
  """Process 0 removes the temporary folders of checkpoints a killed run never completed,
  naming them in one line (call it holding the workdir's lock)."""
  folder = os.path.join(workdir, 'checkpoints')
  left = checkpoint.unfinished(folder)
  if jax.process_index() == 0 and left:
    for path in left:
      shutil.rmtree(path)
    logging.info('Removed from %s the unfinished checkpoint folders a stopped run left: %s.',
                 folder, ', '.join(map(os.path.basename, left)))


def _has_checkpoint(workdir):
  folder = os.path.join(workdir, 'checkpoints')
  return os.path.isdir(folder) and any(name.isdigit() for name in os.listdir(folder))


def trim_metrics(workdir, step):
  """Drops metrics.jsonl rows after ``step`` (written past the checkpoint a resume restores),
  so that the log matches the state; rewritten whole (a temporary file renamed over it)."""
  path = os.path.join(workdir, METRICS_FILE)
  if jax.process_index() != 0 or not os.path.isfile(path):
    return
  with open(path) as f:
    rows = f.readlines()
  kept = [row for row in rows if _row_step(row) <= step]
  if len(kept) < len(rows):
    files.write_whole(path, ''.join(kept))
    logging.info('Dropped %d rows after step %d from %s.', len(rows) - len(kept), step, path)


def _row_step(row):
  try:
    return int(json.loads(row)['step'])
  except (ValueError, KeyError, TypeError):
    return float('inf')  # a torn last line of a killed run: dropped


def read_config(workdir):
  """The run's config.json, with the fields every run or its network reads that it lacks (added
  to configs/default.py since it was written) at their defaults, and without the retired
  ``mode``."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.isfile(path):
    raise validation.UserError(f'{workdir} is not a colorjax run: it has no {CONFIG_FILE}.')
  try:
    with open(path) as f:
      stored = json.load(f)
  except (OSError, ValueError) as e:
    raise validation.UserError(f'{path} cannot be read as JSON ({e}); it is damaged.') from None
  if not isinstance(stored, dict):
    raise validation.UserError(f'{path} holds a {type(stored).__name__}, not a config.')
  stored.pop('mode', None)
  config = ml_collections.ConfigDict(stored)
  defaults = default.base()
  try:
    defaults.model = default.model(network.network_name(config))
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    raise validation.UserError(f'{path} cannot be used: it names no known network ({e}).') from None
  _fill(config, defaults)
  return config


def _fill(config, defaults):
  """Adds every field of ``defaults`` that ``config`` lacks; the values it has stay."""
  for key, value in defaults.items():
    if key not in config:
      config[key] = value
    elif isinstance(value, ml_collections.ConfigDict):
      _fill(config[key], value)


def check_stored(config, workdir):
  """A run's config as read back, frozen; one sentence when it is not one a run could have
  written (an edited or damaged file): the task, the sizes (bounded by memory), the data and
  the network fields are checked as for a fresh run, but not what only training needs (this
  machine's devices, the files it read)."""
  path = os.path.join(workdir, CONFIG_FILE)
  try:
    validation.check_choice(config, 'task', tasks.TASKS)
    validation.check_choice(config, 'compute_dtype', experiment.DTYPES)
    validation.validate_data(config)
    checked = ml_collections.ConfigDict(config)
    if 'vgg_weights' in checked.model:
      checked.model.vgg_weights = ''   # read once by training; the checkpoint holds them
    network.validate(checked)
    return experiment.frozen(config)
  except validation.ConfigError as e:
    raise validation.UserError(f'{path} cannot be used: {e}') from None
  except (KeyError, AttributeError, TypeError, ValueError) as e:
    raise validation.UserError(f'{path} cannot be used: {type(e).__name__}: {e}') from None


def load(workdir=None, checkpoint_path=None, config=None):
  """The run's latest checkpoint, or the one in ``checkpoint_path`` (RUN/checkpoints/N).
  ``config`` (default: the run's config.json) gives the model to restore into."""
  step = None
  if checkpoint_path:
    checkpoint_path = os.path.realpath(checkpoint_path)
    if not os.path.basename(checkpoint_path).isdigit():
      raise validation.UserError(f'{checkpoint_path} is not a checkpoint folder (RUN/checkpoints/'
                                 'STEP).')
    step = int(os.path.basename(checkpoint_path))
    workdir = os.path.dirname(os.path.dirname(checkpoint_path))
  config = check_stored(config if config is not None else read_config(workdir), workdir)
  task = tasks.get(config.task)
  checkpoints = checkpointer(config, workdir)
  try:
    if checkpoints.latest_step() is None:
      raise validation.UserError(f'{workdir} holds no checkpoint.')
    if step is not None and step not in checkpoints.all_steps():
      raise validation.UserError(f'{checkpoint_path} is not a complete checkpoint of {workdir}.')
    step = checkpoints.latest_step() if step is None else step
    like = init_state(task, config, parallel.make_mesh(), pretrained=False)
    try:
      state, _ = checkpoints.restore(like, step)
    except checkpoint.StateMismatch as e:
      raise validation.UserError(f'{e}: it does not hold the state {CONFIG_FILE} describes (was '
                                 'the file edited?).') from None
  finally:
    checkpoints.close()
  return Run(task=task, state=state, config=config, workdir=workdir, step=step)


def computing_in(run, dtype):
  """``run`` with its networks computing in ``dtype`` (its arrays are kept: a compute dtype
  changes no parameter's shape or dtype)."""
  if run.config.compute_dtype == dtype:
    return run
  config = ml_collections.ConfigDict(run.config.to_dict())
  config.compute_dtype = dtype
  config = experiment.frozen(config)
  shape = (config.image_size, config.image_size)
  template = jax.eval_shape(lambda r: run.task.init(r, config, shape), jax.random.PRNGKey(0))
  state = jax.tree.unflatten(jax.tree.structure(template), jax.tree.leaves(run.state))
  return dataclasses.replace(run, state=state, config=config)


def check_resolution(run, resolution):
  """A network resolution for colorize/export: one sentence when the network cannot take it."""
  if resolution > validation.MAX_RESOLUTION:
    raise validation.UserError(f'--resolution={resolution} is not allowed; use at most '
                               f'{validation.MAX_RESOLUTION}.')
  stride = run.task.total_stride(run.config)
  if resolution < stride or resolution % stride:
    raise validation.UserError(f'--resolution={resolution} is not allowed; this network has a '
                               f'total stride of {stride}, so use a multiple of {stride}.')
