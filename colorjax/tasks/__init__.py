"""Training families: each module exposes pure ``init(rng, config, image_shape, weights=None)
-> TrainState``, ``train_step(state, batch) -> (state, metrics)``, ``eval_step(state, batch)
-> metrics`` and ``predict(state, L) -> ab``, and on the host ``pretrained(config)`` (weights
read from files that ``init`` puts into the state, or None), ``total_stride(config)`` and
``validate(config)``; a task that ``config.init_from`` can warm-start from another task's run
names the params group that run fills as ``INIT_FROM_BRANCH``. train.py picks one by
``config.task``."""
import importlib

TASKS = ('regression', 'classification', 'paired_gan', 'cyclegan')


def get(name):
  return importlib.import_module(f'colorjax.tasks.{name}')
