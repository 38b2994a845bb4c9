"""Training families, each a module that provides ``Task``; train.py picks one by
``config.task``."""
import importlib
from typing import Any, Protocol, cast, runtime_checkable

import jax

from colorjax.tasks.state import TrainState

TASKS = ('regression', 'classification', 'paired_gan', 'cyclegan')


@runtime_checkable
class Task(Protocol):
  """What a task module provides: pure functions of the TrainState (traced under jit) and
  host-side functions of the config."""

  # The params group that ``config.init_from`` fills when the run it names lacks it (a
  # regression run warm-starting a GAN's 'generator'); None: that run fills every group.
  INIT_FROM_BRANCH: str | None

  def init(self, rng, config, image_shape, weights=None) -> TrainState:
    """A fresh TrainState for images of ``image_shape`` (H, W); ``weights`` from
    ``pretrained``."""

  def train_step(self, state, batch) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimisation step on a batch: (state, metrics)."""

  def eval_step(self, state, batch) -> dict[str, jax.Array]:
    """metrics.eval_sums of the prediction on an eval batch."""

  def predict(self, state, L) -> jax.Array:
    """L in Lab units [N, H, W, 1] -> predicted ab in Lab units."""

  def pretrained(self, config) -> Any:
    """On the host: the weights ``init`` puts into the state, read from files, or None."""

  def total_stride(self, config) -> int:
    """Image sides must be multiples of this."""

  def validate(self, config) -> None:
    """The task's config fields: an error of one sentence on the first problem."""


def get(name) -> Task:
  return cast(Task, importlib.import_module(f'colorjax.tasks.{name}'))
