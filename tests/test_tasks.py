"""The task contract: every task module provides ``tasks.Task``, names and parameters alike."""
import inspect

import pytest

from colorjax import tasks

FUNCTIONS = [name for name, member in vars(tasks.Task).items()
             if inspect.isfunction(member) and not name.startswith('_')]


def test_the_contract_names_every_function_and_the_declared_branch():
  assert sorted(FUNCTIONS) == ['eval_step', 'init', 'predict', 'pretrained', 'total_stride',
                               'train_step', 'validate']
  assert 'INIT_FROM_BRANCH' in tasks.Task.__annotations__


@pytest.mark.parametrize('name', tasks.TASKS)
def test_each_task_provides_the_contract(name):
  task = tasks.get(name)
  missing = [member for member in ('INIT_FROM_BRANCH', *FUNCTIONS) if not hasattr(task, member)]
  assert isinstance(task, tasks.Task), f'{name} lacks {missing}'
  assert task.INIT_FROM_BRANCH is None or isinstance(task.INIT_FROM_BRANCH, str)
  for function in FUNCTIONS:
    theirs = list(inspect.signature(getattr(tasks.Task, function)).parameters.values())[1:]
    ours = list(inspect.signature(getattr(task, function)).parameters.values())
    assert [(p.name, p.kind, p.default) for p in ours] == [
        (p.name, p.kind, p.default) for p in theirs], f'{name}.{function}'
