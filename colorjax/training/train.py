"""The task-agnostic training loop: mesh, jitted step, eval, checkpoints, logs, sample grids.

``train_and_evaluate(config, workdir)`` trains ``config.task`` data-parallel over every device,
resuming from the latest checkpoint in ``workdir``. The loop never waits for the device except
at logging, eval and checkpoint steps.
"""
import functools
import json
import math
import os
import signal
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from jax.experimental import multihost_utils

from colorjax import evaluation, tasks
from colorjax.core import (color, compilation_cache, optim, parallel, startup, validation,
                           visualize)
from colorjax.tasks.inputs import rgb_and_lab
from colorjax.training import checkpoint, experiment, runs

GRID_IMAGES = 8


class NonFiniteLoss(validation.UserError):
  """Training produced a NaN or infinite loss."""


class Interrupted(validation.UserError, KeyboardInterrupt):
  """Ctrl-C that the graceful stop does not take (the second one): said in one sentence."""


class _EvalStopped(Exception):
  """A stop signal arrived during an eval pass: its remaining batches are skipped."""


def _sample_grid(task, state, batch):
  """uint8 grid, one row per valid image: gray input | prediction | original."""
  rgb, L, ab, mask = parallel.to_host(_grid_inputs(task, state, batch))
  rows = []
  for i in np.flatnonzero(mask)[:GRID_IMAGES]:
    gray = color.lab_to_rgb(np.concatenate([L[i], np.zeros_like(ab[i])], -1), xp=np)
    rows.append([gray, color.join_l_ab(L[i], ab[i], xp=np), rgb[i]])
  return visualize.grid(rows, labels=('gray input', 'prediction', 'original'))


@functools.partial(jax.jit, static_argnums=0)
def _grid_inputs(task, state, batch):
  rgb, lab = rgb_and_lab(batch)
  L = color.split_lab(lab)[0]
  return rgb, L, task.predict(state, L), batch['mask']


class Observer:
  """What a run reports, through clu: scalars to the console (logging) and TensorBoard
  (process 0), progress lines with steps/sec and ETA, the profile window; process 0 also
  appends every scalar to metrics.jsonl and saves sample grids."""

  def __init__(self, workdir, config):
    from clu import metric_writers, periodic_actions  # imports TensorFlow: only when training
    self.workdir = workdir
    self.is_writer = jax.process_index() == 0
    self.writer = metric_writers.create_default_writer(workdir, just_logging=not self.is_writer)
    self.jsonl = os.path.join(workdir, 'metrics.jsonl')
    self.progress = periodic_actions.ReportProgress(
        num_train_steps=config.num_steps, every_steps=config.log_every, every_secs=None)
    self.hooks = [self.progress]
    first, count = config.profile_steps
    if count and self.is_writer:   # a jax.profiler trace of steps [first, first + count)
      self.hooks.append(periodic_actions.Profile(
          logdir=os.path.join(workdir, 'profile'), num_profile_steps=count,
          profile_duration_ms=None, first_profile=first, every_secs=None))

  def step(self, step):
    """After each step (and once before the first): progress and the profile window."""
    for hook in self.hooks:
      hook(step)

  def scalars(self, step, values, prefix=''):
    values = {f'{prefix}{k}': float(v) for k, v in values.items()}
    self.writer.write_scalars(step, values)
    if self.is_writer:
      with open(self.jsonl, 'a') as f:
        f.write(json.dumps({'step': step, **values}) + '\n')

  def image(self, step, grid):
    if self.is_writer:
      visualize.save_png(os.path.join(self.workdir, 'samples', f'step_{step:06d}.png'), grid)
    self.writer.write_images(step, {'samples': grid[None]})

  def close(self):
    self.writer.flush()
    self.writer.close()


def _guarded(train_step, skip_nonfinite):
  """The task's step, also reporting the global norm of the updated params: a non-finite
  norm shows a diverged state before it could be checkpointed. With ``skip_nonfinite``, a step
  whose metrics or params are not finite keeps the previous params, statistics and optimiser
  state (only the step advances) and reports ``skipped`` 1."""
  def step(state, batch):
    new, values = train_step(state, batch)
    values = {**values, 'param_norm': optax.global_norm(new.params)}
    if not skip_nonfinite:
      return new, values
    finite = jnp.all(jnp.stack([jnp.isfinite(v) for v in jax.tree.leaves(values)]))
    kept = jax.tree.map(lambda a, b: jnp.where(finite, a, b), new.replace(step=state.step),
                        state)
    return kept.replace(step=new.step), {**values, 'skipped': 1.0 - finite}
  return step


class GracefulStop:
  """While active, SIGTERM or SIGINT asks the loop to finish its step, save a checkpoint and
  return (a second SIGINT interrupts at once).

  With several processes, SIGTERM belongs to JAX's preemption service: a notice to any
  process makes every process stop after the same step (Ctrl-C interrupts at once there).
  """

  def __init__(self):
    self.received = None  # the signal's name once one arrived
    self._previous = {}
    self._many = jax.process_count() > 1

  def _handle(self, signum, frame):
    del frame
    self.received = signal.Signals(signum).name
    signal.signal(signal.SIGINT, signal.default_int_handler)

  def __enter__(self):
    if not self._many and threading.current_thread() is threading.main_thread():
      self._previous = {s: signal.signal(s, self._handle)
                        for s in (signal.SIGTERM, signal.SIGINT)}
    return self

  def __exit__(self, *exc):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)

  def should_stop(self, step):
    """Whether to stop after ``step`` (call once per step, on every process)."""
    if self._many and multihost_utils.reached_preemption_sync_point(step):
      self.received = 'SIGTERM (preemption notice)'
    return self.received is not None

  def stoppable(self, eval_step):
    """``eval_step``, raising _EvalStopped before a batch once a signal arrived (with several
    processes ``received`` changes only at a step's sync point, so they all finish the pass)."""
    def step(state, batch):
      if self.received is not None:
        raise _EvalStopped
      return eval_step(state, batch)
    return step


def _check_finite(pending, skip_nonfinite):
  """Raises NonFiniteLoss naming the first step with a non-finite metric (skipped steps are
  fine when ``skip_nonfinite``)."""
  for step, values in pending:
    if skip_nonfinite and values['skipped']:
      continue
    bad = {k: float(v) for k, v in values.items() if not math.isfinite(float(v))}
    if bad:
      details = ', '.join(f'{k} {v}' for k, v in sorted(bad.items()))
      raise NonFiniteLoss(f'Training became non-finite at step {step} ({details}); training '
                          'stopped')


def _own_position(saved):
  """This process's input-pipeline position from a checkpoint's record of every process's;
  with another process count, process 0's (the data order then changes from there on)."""
  positions = saved['processes']
  if len(positions) == jax.process_count():
    return positions[jax.process_index()]
  logging.warning('The checkpoint was written by %d processes and %d resume it: each process '
                  'continues the data from process 0\'s position.', len(positions),
                  jax.process_count())
  return positions[0]


def _mean(pending):
  """Each metric's mean over the steps since the last log (finite values only); 'skipped'
  is the number of skipped steps."""
  summary = {}
  for k in pending[-1][1]:
    values = np.asarray([float(m[k]) for _, m in pending])
    finite = values[np.isfinite(values)]
    summary[k] = (float(values.sum()) if k == 'skipped' else
                  float(finite.mean()) if finite.size else float('nan'))
  return summary


def jitted_train_step(task, config, mesh):
  """The task's train step as the loop runs it: guarded, jitted over the mesh, state donated."""
  replicated, sharded = parallel.replicated(mesh), parallel.sharded(mesh)
  return jax.jit(_guarded(task.train_step, config.skip_nonfinite),
                 in_shardings=(replicated, sharded), out_shardings=(replicated, replicated),
                 donate_argnums=0)


def train_and_evaluate(config, workdir):
  """Trains config.task for config.num_steps steps, resuming from workdir if it has a run."""
  from colorjax.data import sources  # imports TensorFlow
  experiment.validate(config)
  config = experiment.frozen(config)
  source = sources.open_source(config.data)   # a missing data set: one sentence, no workdir
  source.check()
  startup.mark('data source')
  with runs.claim(config, workdir):
    return _train(config, workdir, source)


def _train(config, workdir, source):
  """train_and_evaluate in a claimed workdir."""
  from colorjax.data import pipeline  # imports TensorFlow
  task = tasks.get(config.task)
  mesh = parallel.make_mesh()
  shard = parallel.shard_of_data()
  logging.info('process %d of %d, %d local of %d devices: %s', jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count(),
               jax.devices()[0].device_kind)

  checkpoints = runs.checkpointer(config, workdir)
  # Pretrained weights (VGG16) only for a fresh run: a resume restores them with the rest.
  state = runs.init_state(task, config, mesh,
                          pretrained=checkpoints.latest_step() is None)
  startup.mark('state', compiled=True)
  data_state = None
  if checkpoints.latest_step() is not None:
    state, saved_positions = checkpoints.restore(state)
    data_state = _own_position(saved_positions)
    runs.trim_metrics(workdir, int(jax.device_get(state.step)))
    logging.info('Resumed from %s.', checkpoints.path(checkpoints.latest_step()))
    startup.mark('restore')
  elif config.init_from:
    state = checkpoint.load_params(config.init_from, state,
                                   task.INIT_FROM_BRANCH)
    logging.info('Warm-started params from %s.', config.init_from)

  eval_step = evaluation.jitted_eval_step(task, mesh)
  lr = optim.schedule(config.optim, config.num_steps)
  observer = Observer(workdir, config)
  batches = pipeline.train_batches(config, shard, state=data_state, source=source)
  step = int(jax.device_get(state.step))
  if step >= config.num_steps:
    logging.info('%s is already trained to step %d of %d; nothing to do (use another workdir, '
                 'or raise num_steps, to train more).', workdir, step, config.num_steps)
  last_saved = step if data_state is not None else None
  stop = GracefulStop()
  eval_step = stop.stoppable(eval_step)
  batch, interrupted, started = None, False, False
  try:
    with stop:
      if step < config.num_steps:
        batch = parallel.global_batch(next(batches), mesh)
        startup.mark('input pipeline')
        start = time.perf_counter()
        lowered = jitted_train_step(task, config, mesh).lower(state, batch)
        startup.mark('trace')
        hits = compilation_cache.counts()[1]
        train_step = lowered.compile()
        logging.info('%s the training step in %.1f s.',
                     'Loaded' if compilation_cache.counts()[1] > hits else 'Compiled',
                     time.perf_counter() - start)
        startup.mark('compile', compiled=True)
        observer.step(step)   # steps/sec and ETA count from here, without the compile
      pending, data_wait, tick = [], 0.0, time.perf_counter()
      while step < config.num_steps:
        if batch is None:
          wait_start = time.perf_counter()
          batch = parallel.global_batch(next(batches), mesh)
          data_wait += time.perf_counter() - wait_start
        state, step_metrics = train_step(state, batch)
        batch = None
        if not started:   # one wait, for the start-up line
          jax.block_until_ready(step_metrics)
          startup.mark('first step')
          logging.info('%s', startup.line('the first step'))
          started = True
        step += 1
        pending.append((step, step_metrics))
        boundary = step == config.num_steps
        # One reading per step: a signal arriving later is handled after the next step.
        stopping = stop.should_stop(step)
        save = step % config.checkpoint_every == 0 or boundary or stopping
        if step % config.log_every == 0 or save:
          pending = jax.device_get(pending)
          _check_finite(pending, config.skip_nonfinite)
          elapsed = time.perf_counter() - tick
          observer.scalars(step, {**_mean(pending), 'lr': lr(step - 1),
                                  'images_per_sec': len(pending) * config.batch_size / elapsed,
                                  'data_wait': data_wait / elapsed}, 'train/')
          pending, data_wait, tick = [], 0.0, time.perf_counter()
        eval_metrics = None
        if step % config.eval_every == 0 or boundary:
          try:
            with observer.progress.timed('eval'):
              result = evaluation.evaluate(state, config, mesh, shard, eval_step)
          except _EvalStopped:   # a signal: the next step (or this one's save) stops
            logging.info('Skipped the rest of the eval at step %d to stop.', step)
            result = None
          if result is not None:
            eval_metrics, first = result.metrics, result.first
            observer.scalars(step, eval_metrics, 'eval/')
            if first is not None:
              observer.image(step, _sample_grid(task, state, first))
          if batches.skipped_any():
            logging.info('%s.', batches.skipped())
          tick = time.perf_counter()
        if save:
          positions = {'processes': parallel.every_process(batches.state)}
          checkpoints.save(step, state, positions, eval_metrics)
          last_saved = step
        observer.step(step)  # after the log step's device_get: rates count finished steps
        if stopping:
          break
      checkpoints.wait()   # within the graceful stop: a second Ctrl-C here is Interrupted
  except KeyboardInterrupt:   # the second Ctrl-C (or the first, with several processes)
    interrupted = True
    saving = checkpoints.saving
    during = f' while the checkpoint at step {saving} was being saved' if saving else ''
    raise Interrupted(f'Interrupted at step {step}{during}; the last complete checkpoint is '
                      f'{checkpoints.last_complete() or "none"}, and the same command resumes '
                      'from it.') from None
  except NonFiniteLoss as e:
    checkpoints.wait()
    where = checkpoints.path(last_saved) if last_saved else 'none was saved yet'
    raise NonFiniteLoss(f'{e}; the last good checkpoint is {where}.') from None
  except checkpoint.CheckpointError as e:
    raise checkpoint.CheckpointError(f'{e} Training stopped at step {step}; make room and run '
                                     'the same command to resume.') from None
  except OSError as e:  # logs and sample grids on a full disk or an unwritable folder
    raise validation.UserError(f'Could not write {e.filename or workdir} at step {step} '
                               f'({e.strerror}); training stopped. Make room and run the same '
                               'command to resume from the last complete checkpoint.') from None
  finally:
    batches.close()
    if not interrupted:   # else the save in flight is abandoned
      checkpoints.wait()
      checkpoints.close()
    observer.close()
  if stop.received:
    logging.warning('Stopped by %s at step %d; the checkpoint %s is complete. Run the same '
                    'command to resume.', stop.received, step, checkpoints.path(step))
  return state
