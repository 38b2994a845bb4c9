"""The one place that talks to Orbax: asynchronous saves, retention, resume, warm starts.

A checkpoint holds the TrainState's arrays (``state``) and the input pipeline's position
(``data``, JSON), so a resumed run continues the same batches. Retention keeps the latest
``keep`` checkpoints and the ``keep_best`` best by an eval metric.
"""
import os
import re

import jax
import orbax.checkpoint as ocp

from colorjax.core import trees
from colorjax.core.validation import UserError


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

  def latest_step(self):
    return self.manager.latest_step()

  def all_steps(self):
    return self.manager.all_steps()

  def path(self, step):
    return os.path.join(self.directory, str(step))

  def save(self, step, state, data_state, metrics=None):
    """Starts an asynchronous save of ``state`` and the pipeline position at ``step``, once
    the previous save is complete (CheckpointError if it failed)."""
    self.wait()
    self._pending = step
    try:
      self.manager.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state)),
          metrics=metrics)
    except (OSError, ValueError) as e:
      self._failed(e)

  def restore(self, like, step=None):
    """(state, data_state) of ``step`` (default: the latest complete checkpoint), with the
    shapes and shardings of ``like``."""
    step = self.latest_step() if step is None else step
    self._check_shapes(like, step)
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(_abstract(like)), data=ocp.args.JsonRestore()))
    return restored.state, restored.data

  def _check_shapes(self, like, step):
    """StateMismatch, before Orbax reads an array, when the checkpoint's arrays are not the
    shapes of ``like``'s (another network than the one asked for)."""
    stored = ocp.StandardCheckpointer().metadata(os.path.join(self.path(step), 'state'))
    shapes = lambda tree: sorted(tuple(leaf.shape) for leaf in jax.tree.leaves(tree))
    if shapes(getattr(stored, 'item_metadata', stored)) != shapes(_abstract(like)):
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

  def _failed(self, error):
    step, self._pending = self._pending, None
    complete = [s for s in self.manager.all_steps(read=True) if s != step]
    last = self.path(max(complete)) if complete else 'none'
    reason = _reason(error) if error else 'the error is logged above'
    raise CheckpointError(f'The checkpoint at step {step} could not be written to '
                          f'{self.directory} ({reason}); the last complete checkpoint is '
                          f'{last}.') from None

  def close(self):
    self.manager.close()


def _reason(error):
  """The operating system's words for a failed write ('No space left on device'), else the
  first line of the error."""
  if isinstance(error, OSError) and error.strerror:
    return error.strerror
  text = str(error)
  found = re.search(r"([^:]+) \[os_error_code='\d+'\]", text)
  return found.group(1).strip() if found else text.splitlines()[0][:200]


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
    taken = trees.overlay(like, saved, complete=True)
  except trees.Misfit as e:
    where = f'{name}/{e.where}'
    if e.found is None:
      raise UserError(f'config.init_from={path!r} has no parameter {where}; it was trained with '
                      'a different model.') from None
    raise UserError(f'config.init_from={path!r} does not fit this model: {where} has shape '
                    f'{e.found} there and {e.expected} here.') from None
  return jax.device_put(taken, jax.tree.map(lambda leaf: leaf.sharding, like))
