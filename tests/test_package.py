"""The package as users meet it: imports, the console script, the demo command."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT

ENV = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'}


def run(*args):
  return subprocess.run(args, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)


LIBRARY = ('colorjax', 'colorjax.color', 'colorjax.validation', 'colorjax.visualize',
           'colorjax.data.images', 'colorjax.data.sources', 'colorjax.models.unet',
           'colorjax.tasks.regression', 'colorjax.train', 'colorjax.checkpoint')


@pytest.mark.parametrize('entry', ['colorjax.main', 'colorjax.colorize'])
def test_core_modules_do_not_import_tensorflow(entry):
  """Accelerator machines have JAX but no TensorFlow: only the input pipeline may need it.
  (Entry points define flags of the same names, so each gets its own interpreter.)"""
  code = ('import sys, importlib\n'
          f'for m in {LIBRARY + (entry,)!r}:\n'
          '  importlib.import_module(m)\n'
          'print("tensorflow" in sys.modules)')
  result = run(sys.executable, '-c', code)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == 'False'


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
  assert sheet.shape == (3 * 34 - 2, 4 * 34 - 2, 3)
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
