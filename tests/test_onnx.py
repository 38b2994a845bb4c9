"""colorjax export --format=onnx: every family's predict in ONNX Runtime against colorjax's own,
and colorize --exported=model.onnx, with good and bad files."""
import re

import jax
import numpy as np
import onnx
import onnx.helper
import pytest

from colorjax import tasks
from colorjax.core.validation import UserError
from colorjax.inference import Colorizer, onnx_export, onnx_model
from colorjax.inference.colorizer import network_input
from colorjax.training import runs
from conftest import (FAMILIES, assert_colorizes_like_its_run, colour_image, family_config,
                      run_cli)

# float32 agreement: 1e-4 of the ab range (Lab units, about -110..110) the networks predict
AB_TOLERANCE = 1e-4 * 110


def tiny_run(name, dtype='float32'):
  """Family ``name``'s tiny network with random weights, as a runs.Run."""
  config = family_config(name, dtype)
  task = tasks.get(config.task)
  shape = (config.image_size, config.image_size)
  state = jax.jit(lambda rng: task.init(rng, config, shape))(jax.random.PRNGKey(3))
  return runs.Run(task=task, state=state, config=config, workdir='tiny', step=7)


def photos(count, resolution):
  return [colour_image(20 + i, size=(resolution, resolution)) for i in range(count)]


def export(tmp_path, run, graph):
  path = tmp_path / f'{graph}.onnx'
  meta = onnx_export.save(str(path), run, run.config.image_size, graph)
  onnx.checker.check_model(str(path), full_check=True)
  model = onnx_model.OnnxModel(path)
  assert (model.graph, model.resolution, model.meta) == (graph, run.config.image_size, meta)
  return model


@pytest.mark.parametrize('name', FAMILIES)
def test_every_family_runs_in_onnx_runtime_as_in_colorjax(name, tmp_path):
  """The lab graph gives predict's ab, the rgb graph Colorizer's colours, at batch 1 and 3."""
  run = tiny_run(name)
  resolution = run.config.image_size
  predict = jax.jit(run.task.predict)
  rgbs = photos(3, resolution)
  L = np.stack([network_input(rgb, resolution)[0] for rgb in rgbs])
  lab, rgb = export(tmp_path, run, 'lab'), export(tmp_path, run, 'rgb')
  expected_ab = np.asarray(predict(run.state, L))
  expected_rgb = np.stack(Colorizer(lambda L: predict(run.state, L), resolution).colorize(rgbs))
  assert np.abs(expected_ab).max() > 1   # a network that predicts colour, not zeros
  for batch in (1, 3):
    ab = lab(L[:batch])
    assert ab.shape == expected_ab[:batch].shape and ab.dtype == np.float32
    assert np.abs(ab - expected_ab[:batch]).max() <= AB_TOLERANCE
    colorized = rgb(np.stack(rgbs[:batch]))
    assert colorized.shape == (batch, resolution, resolution, 3) and colorized.dtype == np.uint8
    assert np.abs(colorized.astype(int) - expected_rgb[:batch]).max() <= 1
  if name == 'cyclegan':   # its scanned residual blocks: one ONNX loop, not unrolled copies
    ops = [node.op_type for node in onnx.load(tmp_path / 'lab.onnx').graph.node]
    assert ops.count('Loop') == 1


@pytest.mark.parametrize('name', ['unet', 'cyclegan'])
def test_a_bfloat16_run_is_exported_computing_in_float32(name, tmp_path):
  run = tiny_run(name, 'bfloat16')
  float32 = runs.computing_in(run, 'float32')
  L = np.stack([network_input(rgb, 32)[0] for rgb in photos(2, 32)])
  ab = export(tmp_path, run, 'lab')(L)
  expected = np.asarray(jax.jit(float32.task.predict)(float32.state, L))
  in_bfloat16 = np.asarray(jax.jit(run.task.predict)(run.state, L), np.float32)
  assert np.abs(ab - expected).max() <= AB_TOLERANCE
  assert np.abs(in_bfloat16 - expected).max() > 3 * AB_TOLERANCE   # the check tells them apart


def test_onnx_export_and_colorize_from_the_command_line(trained_run, tmp_path):
  """The user's path: export a trained run, colorize photos with the file in ONNX Runtime as
  with the run itself, and the output rules of both commands."""
  model = tmp_path / 'model.onnx'
  result = run_cli('export', f'--workdir={trained_run}', '--format=onnx', f'--output={model}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'ONNX (opset 17, L float32 [batch, 32, 32, 1] -> ab float32' in result.stdout
  inputs = assert_colorizes_like_its_run(trained_run, model, tmp_path)
  wrong = run_cli('colorize', f'--exported={model}', '--resolution=64',
                  f'--output={tmp_path / "other"}', inputs)
  assert wrong.returncode == 2 and f'{model} was exported at 32' in wrong.stderr
  before = model.read_bytes()
  again = run_cli('export', f'--workdir={trained_run}', '--format=onnx', f'--output={model}')
  assert again.returncode == 2 and 'exists already' in again.stderr
  assert model.read_bytes() == before
  mismatch = run_cli('export', f'--workdir={trained_run}', f'--output={tmp_path / "m.onnx"}')
  assert mismatch.returncode == 2 and 'does not fit --format=jax' in mismatch.stderr
  assert not (tmp_path / 'm.onnx').exists()


def test_bad_onnx_files_are_one_sentence(trained_run, tmp_path):
  rgb_graph = tmp_path / 'rgb.onnx'
  result = run_cli('export', f'--workdir={trained_run}', '--format=onnx', '--graph=rgb',
                   f'--output={rgb_graph}')
  assert result.returncode == 0, result.stderr[-3000:]
  data = rgb_graph.read_bytes()
  (tmp_path / 'truncated.onnx').write_bytes(data[:len(data) // 2])
  (tmp_path / 'text.onnx').write_text('not a model')
  vector = onnx.helper.make_tensor_value_info('x', onnx.TensorProto.FLOAT, ['n', 3])
  identity = onnx.helper.make_model(onnx.helper.make_graph(
      [onnx.helper.make_node('Identity', ['x'], ['y'])], 'other',
      [vector], [onnx.helper.make_tensor_value_info('y', onnx.TensorProto.FLOAT, ['n', 3])]))
  onnx.save(identity, tmp_path / 'other.onnx')
  for case, expected in (('truncated', 'is not a usable ONNX model'),
                         ('text', 'is not a usable ONNX model'),
                         ('other', "is not a colorjax colorizer: it takes 'x' tensor(float) "
                                   "['n', 3] and returns 'y'"),
                         ('rgb', 'holds the RGB graph')):
    path = tmp_path / f'{case}.onnx'
    with pytest.raises(UserError, match=re.escape(expected)):
      Colorizer.from_exported(path)
    result = run_cli('colorize', f'--exported={path}', f'--output={tmp_path / "out"}', path)
    message = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(message) == 1 and 'Traceback' not in result.stderr
    assert message[0].startswith(f'colorjax colorize: {path} ') and expected in message[0]
  assert not (tmp_path / 'out').exists()
