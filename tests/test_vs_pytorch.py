"""benchmarks/vs_pytorch.py: a clean skip without PyTorch; with it, the PyTorch side computes
the same colour conversion and has the same networks as colorjax, and the harness alternates
the two sides and quotes the ratio of the medians."""
import functools
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT))
from benchmarks import vs_pytorch  # imports without torch


def import_torch():
  """torch, or a skip: not installed, or TensorFlow already loaded in this process (importing
  torch's compiler stack after TensorFlow aborts the interpreter)."""
  if 'tensorflow' in sys.modules:
    pytest.skip('TensorFlow is loaded in this process and importing torch after it aborts; run '
                'pytest tests/test_vs_pytorch.py on its own')
  return pytest.importorskip('torch')

HIDE_TORCH = '''
import runpy, sys
sys.modules['torch'] = None
sys.argv = ['vs_pytorch', '--workloads=unet', '--batch_sizes=1']
runpy.run_module('benchmarks.vs_pytorch', run_name='__main__')
'''


def test_without_torch_says_so_in_one_sentence_and_exits_0():
  out = subprocess.run([sys.executable, '-c', HIDE_TORCH], cwd=ROOT, capture_output=True,
                       text=True, timeout=120, env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stdout.strip() == vs_pytorch.NO_TORCH
  assert 'pip install' in vs_pytorch.NO_TORCH


def test_flags_are_checked():
  args = vs_pytorch.parse_args(['--workloads=unet,cyclegan', '--batch_sizes=1,8',
                                '--upsample=subpixel', '--compute_dtype=bfloat16'])
  assert (args.workloads, args.batch_sizes, args.upsample) == (['unet', 'cyclegan'], [1, 8],
                                                               ['subpixel'])
  for bad in (['--workloads=unet,gan'], ['--upsample=bilinear'], ['--batch_sizes=0']):
    with pytest.raises(SystemExit):
      vs_pytorch.parse_args(bad)


def test_alternates_the_sides_and_quotes_the_ratio_of_medians(monkeypatch, capsys):
  """The harness with both measurements replaced: call order, medians, table and JSON."""
  import_torch()
  calls = []
  torch_ips = iter([1.0, 4.0, 2.0])                    # median 2
  jax_ips = {'transpose': iter([0.5, 0.1, 0.3]), 'subpixel': iter([1.0, 3.0, 2.0])}

  def fake_torch(name, batch_size, *args):
    calls.append(('torch', batch_size))
    return {'images_per_s': next(torch_ips)}

  def fake_colorjax(config, steps, warmup):
    calls.append((config.model.upsample, config.batch_size))
    assert (config.image_size, config.model.preset, config.optim.lr) == (256, 'pix2pix', 2e-4)
    return {'images_per_s': next(jax_ips[config.model.upsample]), 'compile_s': 1.0,
            'flops_per_step': 1e9, 'utilisation': 0.1, 'task': config.task}

  monkeypatch.setattr(vs_pytorch, 'measure_torch', fake_torch)
  monkeypatch.setattr(vs_pytorch, 'measure_colorjax', fake_colorjax)
  monkeypatch.setattr(vs_pytorch, 'environment', lambda device: {
      'torch': 't', 'torch_device': 'cpu', 'jax': 'j', 'jax_device': 'cpu', 'cpu': 'x',
      'cpu_count': 2, 'python': '3'})
  assert vs_pytorch.main(['--workloads=unet', '--batch_sizes=4', '--repeats=3']) == 0
  assert calls == [('torch', 4), ('transpose', 4), ('subpixel', 4)] * 3
  out = capsys.readouterr().out
  assert '| unet | 4 | transpose (= PyTorch) | 2 | 0.3 | 0.15× | 0.03–0.50× |' in out
  assert '| unet | 4 | subpixel | 2 | 2 | 1.00× | 0.75–1.00× |' in out
  records = [json.loads(line) for line in out.splitlines() if line.startswith('{')]
  assert len(records) == 1 and records[0]['workload'] == 'unet'
  assert [row['ratio'] for row in records[0]['rows']] == pytest.approx([0.15, 1.0])
  assert [row['ratio_runs'] for row in records[0]['rows']] == [
      pytest.approx([0.5, 0.025, 0.15]), pytest.approx([1.0, 0.75, 1.0])]


def test_a_missing_config_is_one_sentence(monkeypatch):
  monkeypatch.setattr(vs_pytorch, 'load_config', lambda name: None)
  assert vs_pytorch.colorjax_config('pix2pix', 1, 256, 'float32', 'transpose') == (
      'configs/cgan.py not found, so the pix2pix workload is skipped.')


# ----------------------------------------------------------------------------------------------
# With PyTorch: the two sides compute the same things.

def test_torch_lab_matches_colorjax():
  torch = import_torch()
  from colorjax.core import color
  rng = np.random.default_rng(0)
  pixels = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
  pixels[0, 0, :4] = [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 0, 255]]
  expected = np.asarray(color.rgb_to_lab(color.uint8_to_unit(pixels)))
  got = vs_pytorch.torch_rgb_to_lab(torch.from_numpy(pixels).float() / 255.0).numpy()
  np.testing.assert_allclose(got, expected, atol=1e-3)
  normalised = vs_pytorch.torch_normalised_lab(torch.from_numpy(pixels)).numpy()
  L, ab = color.split_lab(expected)
  np.testing.assert_allclose(normalised.transpose(0, 2, 3, 1),
                             np.concatenate([color.normalize_l(L), color.normalize_ab(ab)], -1),
                             atol=1e-4)


@pytest.mark.parametrize('workload', vs_pytorch.WORKLOADS)
def test_same_networks_same_parameter_counts(workload):
  """Every network of a workload, at 256²: colorjax's (by jax.eval_shape of the task's init on
  the config the benchmark runs) against PyTorch's (on the meta device: nothing allocated)."""
  torch = import_torch()
  import jax
  from colorjax import tasks
  from colorjax.training import experiment
  config = vs_pytorch.colorjax_config(workload, 1, 256, 'float32', 'transpose')
  if isinstance(config, str):
    pytest.skip(config)
  experiment.validate(config)
  task = tasks.get(config.task)
  state = jax.eval_shape(lambda rng: task.init(rng, config, (256, 256)), jax.random.PRNGKey(0))
  with torch.device('meta'):
    _, networks = vs_pytorch.torch_workload(workload, torch.device('meta'))
  counts = {}
  for path, network in networks.items():
    params = state.params
    for key in path:
      params = params[key]
    counts[path] = (sum(math.prod(p.shape) for p in jax.tree.leaves(params)),
                    vs_pytorch.count_params(network))
  assert all(jax_count == torch_count for jax_count, torch_count in counts.values()), counts
  assert sum(c for c, _ in counts.values()) == sum(
      math.prod(p.shape) for p in jax.tree.leaves(state.params))   # no network left out


def _copy_flax_to_torch(params, module):
  """Copies a Flax network's params into the PyTorch twin: the k-th Conv / ConvTranspose /
  norm layer of one (by creation order) into the k-th of the other. Transposed-conv kernels
  are flipped: Flax's ConvTranspose correlates the dilated input, PyTorch's is the true
  transpose of a convolution. The ResNet generator's scanned blocks count as the layers they
  stack, in block order."""
  import torch
  from torch import nn

  from colorjax.models import resnet
  if resnet.BLOCKS in params:
    params = resnet.unstack_blocks(params, list)

  def flax_layers(tree, path=()):
    if 'kernel' in tree or 'scale' in tree:
      yield path, tree
      return
    for name, child in tree.items():
      yield from flax_layers(child, path + (name,))

  def kind(name):
    return name.rsplit('_', 1)[0]

  def order(path):
    return tuple(int(name.rsplit('_', 1)[1]) for name in path)

  by_kind = {}
  for path, layer in flax_layers(params):
    by_kind.setdefault(kind(path[-1]), []).append((order(path), layer))
  torch_kinds = {'Conv': nn.Conv2d, 'ConvTranspose': nn.ConvTranspose2d,
                 'BatchNorm': nn.BatchNorm2d, 'InstanceNorm': nn.InstanceNorm2d}
  with torch.no_grad():
    for name, layers in by_kind.items():
      targets = [m for m in module.modules() if type(m) is torch_kinds[name]
                 or (name == 'BatchNorm' and isinstance(m, nn.BatchNorm2d))]
      assert len(targets) == len(layers), (name, len(targets), len(layers))
      for (_, layer), target in zip(sorted(layers, key=lambda item: item[0]), targets):
        if 'kernel' in layer:
          kernel = np.asarray(layer['kernel'])
          if name == 'ConvTranspose':
            kernel = kernel[::-1, ::-1].transpose(2, 3, 0, 1)   # [in, out, kh, kw]
          else:
            kernel = kernel.transpose(3, 2, 0, 1)                # [out, in, kh, kw]
          target.weight.copy_(torch.from_numpy(kernel.copy()))
        else:
          target.weight.copy_(torch.from_numpy(np.array(layer['scale'])))
        if 'bias' in layer:
          target.bias.copy_(torch.from_numpy(np.array(layer['bias'])))
        else:
          assert target.bias is None, (name, 'PyTorch has a bias that colorjax lacks')


def _same_outputs(flax_module, torch_module, x):
  """Both networks in training mode (batch statistics) on x [N, H, W, C], with the same random
  params (NumPy's: every bias and norm scale away from its initial value too)."""
  import jax
  import torch
  shapes = jax.eval_shape(functools.partial(flax_module.init, train=False),
                          jax.random.PRNGKey(0), x)
  rng = np.random.default_rng(1)
  variables = jax.tree.map(lambda s: rng.normal(0, 0.2, s.shape).astype(np.float32), shapes)
  variables['batch_stats'] = jax.tree.map(np.zeros_like, variables.get('batch_stats', {}))
  _copy_flax_to_torch(variables['params'], torch_module)
  expected, _ = jax.jit(functools.partial(flax_module.apply, train=True,
                                          mutable=['batch_stats']))(variables, x)
  got = torch_module.train()(torch.from_numpy(x.transpose(0, 3, 1, 2)))
  np.testing.assert_allclose(got.detach().numpy().transpose(0, 2, 3, 1), np.asarray(expected),
                             rtol=1e-3, atol=1e-4)


def _input(shape, seed=0):
  return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def test_thin_unet_computes_what_colorjax_computes():
  """The pix2pix U-Net preset at three levels and width 4 on 8² (dropout off, to compare)."""
  import_torch()
  from colorjax.models import unet
  fields = {**unet.PRESETS['pix2pix'], 'features': (4, 8, 8), 'dropout': 0.0}
  _same_outputs(unet.UNet(**fields, out_channels=2),
                vs_pytorch.torch_unet256(1, 2, features=(4, 8, 8), dropout_levels=0),
                _input((2, 8, 8, 1)))


@pytest.mark.parametrize('norm,channels', [('batch', 3), ('instance', 1)])
def test_thin_patchgan_computes_what_colorjax_computes(norm, channels):
  import_torch()
  patchgan = pytest.importorskip('colorjax.models.patchgan')
  _same_outputs(patchgan.PatchGAN(features=4, n_layers=3, norm=norm),
                vs_pytorch.torch_patchgan(channels, norm, features=4),
                _input((2, 32, 32, channels)))


def test_thin_resnet_generator_computes_what_colorjax_computes():
  import_torch()
  resnet = pytest.importorskip('colorjax.models.resnet')
  fields = {**resnet.PRESETS['resnet_9blocks'], 'width': 4, 'blocks': 2}
  _same_outputs(resnet.ResnetGenerator(**fields, out_channels=1),
                vs_pytorch.torch_resnet9(3, 1, width=4, blocks=2), _input((2, 16, 16, 3)))


def test_torch_cyclegan_step_runs_and_moves_every_network():
  """One PyTorch CycleGAN step at 32² changes the params of all four networks (the U-Net-256
  workloads need 256² and are left to the benchmark)."""
  torch = import_torch()
  device = torch.device('cpu')
  step, networks = vs_pytorch.torch_workload('cyclegan', device)
  before = {path: [p.detach().clone() for p in net.parameters()] for path, net in networks.items()}
  loss = step(vs_pytorch.torch_batch('cyclegan', 1, 32, device))
  assert math.isfinite(float(loss.detach()))
  for path, net in networks.items():
    assert any(not torch.equal(a, b) for a, b in zip(before[path], net.parameters())), path
