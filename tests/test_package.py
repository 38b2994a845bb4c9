"""The package as users meet it: imports, the console script, the demo command."""
import ast
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from colorjax.core import visualize
from conftest import ROOT

ENV = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'}


def run(*args):
  return subprocess.run(args, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)


LIBRARY = ('colorjax', 'colorjax.core.color', 'colorjax.core.validation', 'colorjax.core.visualize',
           'colorjax.data.images', 'colorjax.data.sources', 'colorjax.models.unet',
           'colorjax.tasks.regression', 'colorjax.training.train', 'colorjax.training.checkpoint',
           'colorjax.inference', 'colorjax.cli.train', 'colorjax.cli.colorize')


def modules_loaded_by_importing(modules):
  """Imports ``modules`` in one fresh interpreter; the names of every module it then holds."""
  code = ('import sys, importlib\n'
          f'for m in {list(modules)!r}:\n'
          '  importlib.import_module(m)\n'
          'print(" ".join(sys.modules))')
  result = run(sys.executable, '-c', code)
  assert result.returncode == 0, result.stderr[-3000:]
  return set(result.stdout.split())


def test_core_modules_do_not_import_tensorflow():
  """Accelerator machines have JAX but no TensorFlow: only the input pipeline may need it."""
  assert 'tensorflow' not in modules_loaded_by_importing(LIBRARY)


def package_modules():
  """Every module of the package, by walking its folders (scripts run on import excluded)."""
  root = ROOT / 'colorjax'
  names = ['.'.join(('colorjax',) + p.relative_to(root).with_suffix('').parts)
           for p in root.rglob('*.py')]
  return sorted(n.removesuffix('.__init__') for n in names
                if not n.endswith(('__main__', 'colorjax.main')))


def test_every_module_imports_in_one_interpreter():
  """Commands and library import together: each command's flags are its own."""
  modules = package_modules()
  assert set(modules) <= modules_loaded_by_importing(modules)


# Layers, top to bottom: a module imports only from its own layer or the ones below it.
LAYERS = ('colorjax.cli', 'colorjax.serve', 'colorjax.inference', 'colorjax.training', 'colorjax.evaluation',
          'colorjax.tasks', 'colorjax.models', 'colorjax.data', 'colorjax.core')


SIBLINGS = {LAYERS.index('colorjax.models'), LAYERS.index('colorjax.data')}   # not each other


def layer(module):
  return next(i for i, prefix in enumerate(LAYERS)
              if module == prefix or module.startswith(prefix + '.'))


def test_imports_flow_one_way():
  """cli -> serve -> inference -> training -> evaluation -> tasks -> models -> data -> core, with no
  import upwards (models and data do not import each other)."""
  wrong = []
  for name in package_modules():
    if name in ('colorjax', 'colorjax.main'):
      continue
    path = ROOT / (name.replace('.', '/') + ('/__init__.py' if name in PACKAGES else '.py'))
    for node in ast.walk(ast.parse(path.read_text())):
      targets = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                 [a.name for a in node.names] if isinstance(node, ast.Import) else [])
      for target in targets:
        if target.startswith('colorjax.') or target == 'colorjax':
          if target == 'colorjax':
            target = 'colorjax.' + node.names[0].name
          if layer(target) < layer(name) or {layer(target), layer(name)} == SIBLINGS:
            wrong.append(f'{name} imports {target}')
  assert not wrong, wrong


PACKAGES = {'colorjax.cli', 'colorjax.core', 'colorjax.data', 'colorjax.inference',
            'colorjax.models', 'colorjax.serve', 'colorjax.tasks', 'colorjax.training'}


def test_every_subcommand_has_help():
  from colorjax import cli
  for name in cli.COMMANDS:
    result = run(sys.executable, '-m', 'colorjax.cli', name, '--help')
    assert result.returncode == 0, (name, result.stderr[-2000:])
    assert result.stdout.startswith(f'colorjax {name}: '), name
    assert '\nflags:\n' in result.stdout and '  --' in result.stdout, name
    assert result.stderr == '', (name, result.stderr)


def test_console_script_lists_subcommands():
  result = run(sys.executable, '-m', 'colorjax.cli', '--help')
  assert result.returncode == 0
  assert 'preview' in result.stdout and 'bench-data' in result.stdout
  assert run(sys.executable, '-m', 'colorjax.cli', 'nonsense').returncode == 2


def test_preview_writes_a_contact_sheet(tmp_path):
  out = tmp_path / 'sheet.png'
  result = run(sys.executable, '-m', 'colorjax.cli', 'preview', '--config=configs/default.py',
               '--config.image_size=32', '--config.batch_size=4', '--rows=3', f'--output={out}')
  assert result.returncode == 0, result.stderr[-2000:]
  sheet = np.asarray(Image.open(out))
  top = visualize.LABEL_HEIGHT + 2   # the header naming the columns: colour, L, a, b
  assert sheet.shape == (top + 3 * 34 - 2, 4 * 34 - 2, 3)
  assert sheet[:top].min() < 100
  sheet = sheet[top:]
  # Column 2 is L as gray: R == G == B up to rounding; column 1 is in colour.
  gray = sheet[:32, 34:66].astype(int)
  assert np.abs(gray[..., 0] - gray[..., 2]).max() <= 2
  assert np.abs(sheet[:32, :32, 0].astype(int) - sheet[:32, :32, 2]).mean() > 5


def test_preview_rejects_a_bad_config_value_in_one_sentence(tmp_path):
  result = run(sys.executable, '-m', 'colorjax.cli', 'preview', '--config=configs/default.py',
               '--config.data.color_space=hsv', f'--output={tmp_path / "x.png"}')
  assert result.returncode == 2
  assert result.stderr.strip().endswith(
      "colorjax preview: config.data.color_space='hsv' is not allowed; use one of 'rgb', 'lab'.")
  assert 'Traceback' not in result.stderr


@pytest.mark.parametrize('flags, message', [
    (['--config=configs/unet.py:demo', '--config.optim.lrr=1'],
     'a --config override names a field the config does not have: lrr; Did you mean "lr"'),
    (['--config=configs/unet.py:nodemo'],
     "flag --config=configs/unet.py:nodemo: ValueError: configs/unet.py:nodemo is not a variant; "
     "use 'demo' or none."),
    (['--config=configs/nope.py'], "No such file or directory: 'configs/nope.py'"),
    (['--config=configs/unet.py', '--config.optim.lr=abc'],
     "flag --config.optim.lr=abc: could not convert string to float: 'abc'"),
    (['--config=configs/unet.py'], 'flag --workdir=None: Flag --workdir must have a value'),
])
def test_a_command_line_the_flags_refuse_is_one_line(tmp_path, flags, message):
  workdir = [f'--workdir={tmp_path / "run"}'] if 'workdir' not in message else []
  result = run(sys.executable, '-m', 'colorjax.cli', 'train', *workdir, *flags)
  assert result.returncode == 2
  (line,) = result.stderr.strip().splitlines()
  assert line.startswith('colorjax train: ') and message in line
  assert line.endswith('(colorjax train --help lists the flags)')
  assert not (tmp_path / 'run').exists()
