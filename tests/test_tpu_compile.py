"""What XLA:TPU itself compiles of the training steps, from this CPU machine (``colorjax compile``).

Each compile runs the command in a process of its own, so libtpu is never loaded into the test
workers (their JAX stays on the CPU backend). The compiled HLO is read here independently of the
command's own report: the donated state (the module's input/output aliases against the state's
leaf count from ``jax.eval_shape``), the operand types of every convolution, and the compiled
FLOPs against the plain network's (``benchmark.model_flops``).
"""
import json
import os
import re
import subprocess
import sys

import jax
import pytest

from colorjax import tasks
from colorjax.training import benchmark, experiment, tpu_compile
from benchmarks import tpu_compile as sweep
from conftest import ROOT, load_config

# `make test` installs libtpu; CI must never skip these.
pytestmark = pytest.mark.skipif(tpu_compile.tpu_library() is None and not os.environ.get('CI'),
                                reason='libtpu is not installed (make tpu-compiler)')

# name: (config file, overrides): small images, to compile in seconds. The portrait U-Net at its
# own widths: below 64 channels XLA:TPU's convolutions compute halos and padded channels that
# the network does not (narrower networks compile to 14-26% more FLOPs). L1 alone: the SSIM term
# that follows the switch step filters float32 images by design.
FAMILIES = {
    'unet': ('unet', {'image_size': 32, 'batch_size': 8, 'loss.switch_step': 0}),
    'cyclegan': ('cyclegan', {'model.width': 16, 'model.blocks': 2, 'gan.d_features': 16,
                              'image_size': 32, 'batch_size': 4}),
}


def compile_env():
  """The test's environment less its XLA:CPU-only flags (O0 would reach libtpu's compiler too)
  and its compilation cache: XLA:TPU's own defaults."""
  env = {k: v for k, v in os.environ.items()
         if k not in ('XLA_FLAGS', 'JAX_COMPILATION_CACHE_DIR')}
  return {**env, 'TF_CPP_MIN_LOG_LEVEL': '2'}


def run_compile(*args, timeout=600):
  return subprocess.run([sys.executable, '-m', 'colorjax.cli', 'compile', *map(str, args)],
                        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                        env=compile_env())


def overrides(fields):
  return [f'--config.{k}={v}' for k, v in fields.items()]


def family_config(name, dtype):
  file, fields = FAMILIES[name]
  config = load_config(file)
  config.update_from_flattened_dict(fields)
  config.compute_dtype = dtype
  return config


@pytest.fixture(scope='module', params=list(FAMILIES))
def compiled(request, tmp_path_factory):
  """(name, report, HLO text) of the family's bf16 training step compiled for v5e:2x2."""
  name = request.param
  folder = tmp_path_factory.mktemp(name)
  file, fields = FAMILIES[name]
  done = run_compile(f'--config=configs/{file}.py', '--topology=v5e:2x2',
                     '--config.compute_dtype=bfloat16', *overrides(fields),
                     f'--output={folder}/report.json', f'--hlo={folder}/step.hlo', '--top=5')
  assert done.returncode == 0, done.stderr[-3000:]
  assert 'compiler estimate' in done.stdout and 'roofline' in done.stdout
  return (name, json.loads((folder / 'report.json').read_text()),
          (folder / 'step.hlo').read_text())


def test_the_step_fits_and_its_memory_is_counted(compiled):
  _, report, _ = compiled
  for field in ('argument_bytes', 'output_bytes', 'temp_bytes', 'total_bytes'):
    assert report[field] > 0, field
  assert report['fits'] and report['total_bytes'] < report['hbm_per_device'] == 16 * 2 ** 30
  assert report['devices'] == 4 and report['device_kind'] == 'TPU v5 lite'
  assert report['roofline_step_s'] > 0 and report['bound'] in ('compute', 'memory')


def test_compiled_flops_are_the_plain_networks(compiled):
  """XLA:TPU's FLOPs per image within 10% of the forward and backward passes of the network as
  Flax's own layers compute it (the step exported for CUDA)."""
  name, report, _ = compiled
  config = family_config(name, 'bfloat16')
  experiment.validate(config, devices=4)
  model = benchmark.model_flops(experiment.frozen(config), _cpu_mesh()) / config.batch_size
  assert report['model_flops_per_image'] == pytest.approx(model)
  assert report['xla_flops_per_image'] == pytest.approx(model, rel=0.1)


def _cpu_mesh():
  from colorjax.core import parallel
  return parallel.make_mesh()


def test_every_state_buffer_is_donated(compiled):
  """The module aliases each of the state's leaves (its first parameters) to an output."""
  name, report, hlo = compiled
  config = experiment.frozen(family_config(name, 'bfloat16'))
  task = tasks.get(config.task)
  state = jax.eval_shape(lambda r: task.init(r, config, (config.image_size,) * 2),
                         jax.random.PRNGKey(0))
  leaves = len(jax.tree.leaves(state))
  header = hlo.split('\n', 1)[0]
  aliased = {int(n) for n in re.findall(r': \((\d+), \{\}, may-alias\)', header)}
  assert aliased == set(range(leaves))
  assert report['donated'] and report['state_leaves'] == leaves


_DEFINED = re.compile(r'%(\S+) = (\w+)\[')
_CONVOLUTION = re.compile(r' = \w+\[[^\]]*\]\S* convolution\(%([^,]+), %([^)]+)\)')


def convolution_operand_types(hlo):
  """(image dtype, kernel dtype) of every convolution in a compiled module's text, which names
  the operands without their types: each is looked up where it is defined."""
  defined = dict(_DEFINED.findall(hlo))
  return [(defined[a], defined[b]) for a, b in _CONVOLUTION.findall(hlo)]


def test_every_convolution_takes_bf16(compiled):
  """Under compute_dtype='bfloat16' each convolution XLA:TPU emits (inside its fusions) reads
  bf16 images and bf16 kernels."""
  _, _, hlo = compiled
  operands = convolution_operand_types(hlo)
  assert operands and len(operands) == hlo.count(' convolution(')
  assert all(pair == ('bf16', 'bf16') for pair in operands), sorted(set(operands))


@pytest.mark.parametrize('args, sentence', [
    (['--topology=v7x:2x2'], "--topology='v7x:2x2' is not a TPU topology; use GENERATION:SHAPE"),
    (['--topology=v5e:3x3'], "--topology='v5e:3x3' is not a topology libtpu can build"),
    (['--config.batch_size=6'], 'config.batch_size=6 is not allowed; use a multiple of the 4 '
                                'devices.'),
])
def test_bad_command_lines_are_one_sentence(args, sentence):
  done = run_compile('--config=configs/unet.py', *args, timeout=120)
  assert done.returncode == 2
  assert sentence in done.stderr and 'Traceback' not in done.stderr
  assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_missing_libtpu_says_which_make_line_installs_it(tmp_path):
  """Another interpreter prefix and no TPU_LIBRARY_PATH: no compiler to be found."""
  code = ('import sys; sys.prefix = sys.argv[1]; from colorjax import cli; '
          "sys.exit(cli.main(['colorjax', 'compile', '--config=configs/unet.py']))")
  env = {k: v for k, v in compile_env().items() if k != 'TPU_LIBRARY_PATH'}
  done = subprocess.run([sys.executable, '-c', code, str(tmp_path)], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=120)
  assert done.returncode == 2
  assert "libtpu) is not installed here; `make tpu-compiler` installs it" in done.stderr


def test_the_sweep_uses_each_configs_own_throughput_batch():
  """benchmarks/tpu_compile.py's batches are the ones the configs' docstrings recommend."""
  for name, (file, fields) in sweep.FAMILIES.items():
    module = __import__(f'configs.{os.path.basename(file)[:-3]}', fromlist=['_'])
    assert f"--config.batch_size={fields['batch_size']}" in module.__doc__, name


def test_max_batch_bisects_to_the_largest_multiple_of_the_devices_that_fits(monkeypatch):
  """The search over batches (doubling, then bisecting) against a stand-in for the compile: a
  batch fits up to 52 images on 4 devices."""
  tried = []

  def compile_report(config, topology, devices, mode, resolution):
    tried.append(config.batch_size)
    fits = config.batch_size <= 52
    return {'fits': fits, 'batch_size': config.batch_size,
            **({'total_bytes': 1, 'hbm_per_device': 2} if fits else {'error': 'RESOURCE'})}, None
  monkeypatch.setattr(tpu_compile, 'compile_report', compile_report)
  batch, report = tpu_compile.max_batch(load_config('unet'), 'v5e:2x2', [0] * 4,
                                        log=lambda line: None)
  assert batch == 52 and report['batch_size'] == 52
  assert tried == [4, 8, 16, 32, 64, 48, 56, 52]
