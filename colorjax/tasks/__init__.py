"""Training families: each module exposes pure ``init(rng, config, image_shape) -> TrainState``,
``train_step(state, batch) -> (state, metrics)``, ``eval_step(state, batch) -> metrics`` and
``predict(state, L) -> ab``. train.py picks one by ``config.task``."""
import importlib

TASKS = ('regression',)


def get(name):
  return importlib.import_module(f'colorjax.tasks.{name}')
