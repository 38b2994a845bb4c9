"""A training run on disk: its workdir holds ``config.json`` and ``checkpoints/``.

The one place that builds a run's TrainState and checkpointer, for training and for the
commands that load a trained run (evaluate, colorize, export). No TensorFlow here.
"""
import dataclasses
import json
import os

import jax
import ml_collections

from colorjax import tasks
from colorjax.core import metrics, parallel, validation
from colorjax.tasks import network
from colorjax.training import checkpoint, experiment
from configs import default

CONFIG_FILE = 'config.json'
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
  if jax.process_index() == 0:
    with open(os.path.join(workdir, CONFIG_FILE), 'w') as f:
      f.write(config.to_json_best_effort(indent=2))


def read_config(workdir):
  """The run's config.json, with the fields every run or its network reads that it lacks (added
  to configs/default.py since it was written) at their defaults, and without the retired
  ``mode``."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.isfile(path):
    raise validation.UserError(f'{workdir} is not a colorjax run: it has no {CONFIG_FILE}.')
  with open(path) as f:
    stored = json.load(f)
  stored.pop('mode', None)
  config = ml_collections.ConfigDict(stored)
  defaults = default.base()
  defaults.model = default.model(network.network_name(config))
  _fill(config, defaults)
  return config


def _fill(config, defaults):
  """Adds every field of ``defaults`` that ``config`` lacks; the values it has stay."""
  for key, value in defaults.items():
    if key not in config:
      config[key] = value
    elif isinstance(value, ml_collections.ConfigDict):
      _fill(config[key], value)


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
  config = experiment.frozen(config if config is not None else read_config(workdir))
  task = tasks.get(config.task)
  checkpoints = checkpointer(config, workdir)
  try:
    if checkpoints.latest_step() is None:
      raise validation.UserError(f'{workdir} holds no checkpoint.')
    if step is not None and step not in checkpoints.all_steps():
      raise validation.UserError(f'{checkpoint_path} is not a complete checkpoint of {workdir}.')
    step = checkpoints.latest_step() if step is None else step
    like = init_state(task, config, parallel.make_mesh(), pretrained=False)
    state, _ = checkpoints.restore(like, step)
  finally:
    checkpoints.close()
  return Run(task=task, state=state, config=config, workdir=workdir, step=step)


def check_resolution(run, resolution):
  """A network resolution for colorize/export: one sentence when the network cannot take it."""
  stride = run.task.total_stride(run.config)
  if resolution < stride or resolution % stride:
    raise validation.UserError(f'--resolution={resolution} is not allowed; this network has a '
                               f'total stride of {stride}, so use a multiple of {stride}.')
