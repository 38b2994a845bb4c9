"""The one place that talks to Orbax: asynchronous saves, retention, resume, warm starts.

A checkpoint holds the TrainState's arrays (``state``) and the input pipeline's position
(``data``, JSON), so a resumed run continues the same batches. Retention keeps the latest
``keep`` checkpoints and the ``keep_best`` best by an eval metric.
"""
import logging as std_logging
import os
import re
import shutil
import sys

import jax
import orbax.checkpoint as ocp
from absl import logging
from etils import epath

from colorjax.core import trees
from colorjax.core.validation import UserError
from colorjax.training import migrate


class CheckpointError(UserError):
  """A checkpoint could not be written (full disk, unwritable folder)."""


class StateMismatch(CheckpointError):
  """A checkpoint that holds another state than the one it is restored into."""


TMP_SUFFIX = '.orbax-checkpoint-tmp'   # Orbax writes STEP.orbax-checkpoint-tmp, then renames it


def unfinished(directory, step=None):
  """The temporary folders of saves that never completed in ``directory`` (of ``step`` only,
  when given): Orbax renames a folder only once its checkpoint is complete."""
  names = os.listdir(directory) if os.path.isdir(directory) else []
  return sorted(os.path.join(directory, name) for name in names if TMP_SUFFIX in name
                and (step is None or name.startswith(f'{step}{TMP_SUFFIX}')))


class _Echoes(std_logging.Filter):
  """What Orbax's writer threads report of a failing save, once per thread and with tracebacks
  (error log records, asyncio's, and tensorstore callbacks on a closed event loop): held back
  while a save is in flight, then logged if it completes and dropped if it failed (the
  CheckpointError says it once, with the first one's reason)."""

  LOGGERS = ('absl', 'asyncio', '')

  def __init__(self):
    super().__init__()
    self.held, self.failed, self.active = [], False, False
    self._unraisable = sys.unraisablehook

  def install(self):
    for name in self.LOGGERS:
      std_logging.getLogger(name).addFilter(self)
    sys.unraisablehook = self._hold_unraisable

  def uninstall(self):
    for name in self.LOGGERS:
      std_logging.getLogger(name).removeFilter(self)
    sys.unraisablehook = self._unraisable

  def filter(self, record):
    echo = record.levelno >= std_logging.ERROR and (
        f'{os.sep}orbax{os.sep}' in record.pathname or record.name == 'asyncio')
    return not echo or self._hold(record)

  def _hold_unraisable(self, args):
    if not (isinstance(args.exc_value, RuntimeError) and 'Event loop is closed' in
            str(args.exc_value)) or self._hold(args):
      self._unraisable(args)

  def _hold(self, echo):
    """Whether to let ``echo`` through now."""
    if self.active and not self.failed:
      self.held.append(echo)
    return not (self.active or self.failed)

  def release(self):
    """No save in flight: what was held is logged after all, unless a save failed."""
    held, self.held, self.active = self.held, [], False
    for echo in held if not self.failed else ():
      if isinstance(echo, std_logging.LogRecord):
        std_logging.getLogger(echo.name).handle(echo)
      else:
        self._unraisable(echo)

  def reason(self):
    """The first held error record's reason ('File too large'), else None."""
    for echo in self.held:
      if isinstance(echo, std_logging.LogRecord):
        return _reason(echo.exc_info[1] if echo.exc_info else echo.getMessage())
    return None


class Checkpointer:
  """Checkpoints of one run in ``workdir/checkpoints``."""

  def __init__(self, workdir, *, keep=3, keep_best=1, best_metric='ab_error', best_mode='min'):
    self.directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
    policies = [ocp.checkpoint_managers.LatestN(keep)]
    if keep_best:
      policies.append(ocp.checkpoint_managers.BestN(
          get_metric_fn=lambda m: m[best_metric], reverse=best_mode == 'min', n=keep_best,
          keep_checkpoints_without_metrics=False))
    options = ocp.CheckpointManagerOptions(
        preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(policies),
        enable_async_checkpointing=True, create=True)
    self.manager = ocp.CheckpointManager(self.directory, options=options,
                                         item_names=('state', 'data'))
    self._pending = None  # the step of the save in flight
    self._echoes = _Echoes()
    self._echoes.install()

  def latest_step(self):
    return self.manager.latest_step()

  def all_steps(self):
    return self.manager.all_steps()

  def path(self, step):
    return os.path.join(self.directory, str(step))

  @property
  def saving(self):
    """The step of the save in flight (None when none is)."""
    return self._pending

  def last_complete(self):
    """The path of the latest checkpoint on disk that is complete, else None."""
    self.manager.reload()
    steps = self.manager.all_steps()
    return self.path(max(steps)) if steps else None

  def save(self, step, state, data_state, metrics=None):
    """Starts an asynchronous save of ``state`` and the pipeline position at ``step``, once
    the previous save is complete (CheckpointError if it failed)."""
    self.wait()
    self._pending = step
    self._echoes.active = True
    try:
      self.manager.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state)),
          metrics=metrics)
    except (OSError, ValueError) as e:
      self._failed(e)

  def restore(self, like, step=None):
    """(state, data_state) of ``step`` (default: the latest complete checkpoint), with the
    shapes and shardings of ``like``; a checkpoint of an earlier layout is converted."""
    step = self.latest_step() if step is None else step
    current = _abstract(like)
    target = self._target(current, step)
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(target), data=ocp.args.JsonRestore()))
    state = restored.state
    if target is not current:
      state = jax.device_put(migrate.to_current(state, like),
                             jax.tree.map(lambda leaf: leaf.sharding, like))
    return state, restored.data

  def _target(self, current, step):
    """What Orbax restores ``step`` into: ``current`` (the abstract state asked for), or it
    in the layout of an earlier colorjax (``migrate``) when the checkpoint was written in
    that; StateMismatch, before Orbax reads an array, when neither has the checkpoint's shapes
    (another network than the one asked for)."""
    stored = ocp.StandardCheckpointHandler().metadata(epath.Path(self.path(step)) / 'state')
    shapes = lambda tree: sorted(tuple(leaf.shape) for leaf in jax.tree.leaves(tree))
    if shapes(stored) == shapes(current):
      return current
    earlier = migrate.before_scan(current)
    if earlier is not None and shapes(stored) == shapes(earlier):
      logging.info('%s holds the ResNet generator before its residual blocks were scanned; '
                   'converted on restore.', self.path(step))
      return earlier
    raise StateMismatch(f'{self.path(step)} holds arrays of other shapes than the state asked '
                        'for (another network or optimiser)')

  def wait(self):
    """Blocks until the save in flight is complete; CheckpointError if it could not be written.
    Earlier checkpoints are untouched either way."""
    try:
      self.manager.wait_until_finished()
    except (OSError, ValueError) as e:
      self._failed(e)
    # Orbax sometimes only logs a failed write: the final folder is the proof of completion.
    if self._pending is not None and not os.path.isdir(self.path(self._pending)):
      self._failed(None)
    self._pending = None
    self._echoes.release()

  def _failed(self, error):
    """CheckpointError for the save in flight; process 0 removes its partial folder."""
    step, self._pending = self._pending, None
    self._echoes.failed = True
    reason = self._echoes.reason() or (_reason(error) if error else 'Orbax gave no reason')
    partial = ''
    for folder in unfinished(self.directory, step):
      if jax.process_index() == 0:
        shutil.rmtree(folder, ignore_errors=True)
      partial = (f'; its partial folder {folder} is left' if os.path.exists(folder) else
                 '; its partial folder is removed')
    raise CheckpointError(f'The checkpoint at step {step} could not be written to '
                          f'{self.directory} ({reason}{partial}); the last complete checkpoint '
                          f'is {self.last_complete() or "none"}.') from None

  def close(self):
    self.manager.close()
    if not self._echoes.failed:   # after a failed save, its late echoes stay quiet
      self._echoes.uninstall()


def _reason(error):
  """The operating system's words for a failed write ('No space left on device'), else the
  first line of the error."""
  if isinstance(error, OSError) and error.strerror:
    return error.strerror
  text = str(error)
  found = re.search(r"([^:]+) \[os_error_code='\d+'\]", text)
  return found.group(1).strip() if found else text.strip().split('\n')[0][:200]


def _abstract(tree):
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def load_params(path, like, branch=None):
  """Warm start: the params and batch stats of the checkpoint at ``path`` (a run's workdir or
  one checkpoint folder) put into ``like`` (a fresh TrainState); one sentence naming the
  first parameter whose shape differs. A run without the top-level key ``branch`` (a regression
  run warm-starting a GAN's 'generator') fills only that branch; the rest stays fresh."""
  path = os.path.abspath(path)
  run = os.path.join(path, 'checkpoints')
  if os.path.isdir(run):
    manager = ocp.CheckpointManager(run, item_names=('state', 'data'))
    step = manager.latest_step()
    manager.close()
    if step is None:
      raise UserError(f'config.init_from={path!r} holds no checkpoint.')
    path = os.path.join(run, str(step))
  state_path = os.path.join(path, 'state')
  if not os.path.isdir(state_path):
    raise UserError(f'config.init_from={path!r} is not a colorjax run or checkpoint folder.')
  with ocp.StandardCheckpointer() as checkpointer:
    saved = checkpointer.restore(state_path)
  restored = {}
  for name in ('params', 'batch_stats'):
    tree, target = saved.get(name, {}), getattr(like, name)
    if branch and branch not in saved.get('params', {}):
      restored[name] = {**target, branch: _take_like(tree, target[branch], name, path)}
    else:
      restored[name] = _take_like(tree, target, name, path)
  return like.replace(**restored)


def _take_like(saved, like, name, path):
  """``saved`` (nested dicts of arrays) in the structure, shapes and shardings of ``like``."""
  try:
    taken = trees.overlay(like, migrate.to_current(saved, like), complete=True)
  except trees.Misfit as e:
    where = f'{name}/{e.where}'
    if e.found is None:
      raise UserError(f'config.init_from={path!r} has no parameter {where}; it was trained with '
                      'a different model.') from None
    raise UserError(f'config.init_from={path!r} does not fit this model: {where} has shape '
                    f'{e.found} there and {e.expected} here.') from None
  return jax.device_put(taken, jax.tree.map(lambda leaf: leaf.sharding, like))
