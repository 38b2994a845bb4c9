"""What XLA:TPU makes of a config's programs, compiled on any machine (no TPU needed).

  colorjax compile --config=configs/unet.py --topology=v5e:2x2 --config.compute_dtype=bfloat16
  colorjax compile --config=configs/cyclegan.py --topology=v6e:2x2 --max_batch
  colorjax compile --config=configs/unet.py --topology=v5e:2x2 --predict --resolution=512

libtpu's compiler builds compile-only devices for a named topology
(``jax.experimental.topologies``); the training step is the one ``train.py`` jits (the same
mesh over those devices, shardings and donation, the config's compute dtype), lowered from
``jax.ShapeDtypeStruct``s and compiled for them. ``predict`` is the function ``colorize`` and
``export`` run, data-parallel over the same mesh. The report holds XLA's memory analysis per
device against the chip's HBM, its cost analysis (FLOPs, bytes accessed; per device, as XLA
gives them) per image, and the roofline: a step takes at least max(FLOPs / peak, bytes / HBM
bandwidth), from the chip's published figures (``CHIPS``). Model FLOPs are the plain network's
(``benchmark.model_flops``), so utilisation counts the same work on every platform.

The TPU plugin is loaded only here, and never becomes a JAX backend: ``jax.devices()`` stays on
the host's CPU, so nothing else in the process (or in an ordinary test) initialises a TPU.
"""
import dataclasses
import importlib.util
import math
import os
import pathlib
import re
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from colorjax import tasks
from colorjax.core import parallel
from colorjax.core.validation import UserError
from colorjax.training import benchmark, experiment, train

GiB = 2 ** 30


@dataclasses.dataclass(frozen=True)
class Chip:
  """A TPU chip's published figures: dense bf16 peak (FLOP/s), HBM bytes and bandwidth (B/s)."""
  name: str
  bf16_flops: float
  hbm_bytes: int
  hbm_bandwidth: float
  source: str


# Google Cloud's system-architecture page of each generation (the "chip specifications" table).
CHIPS = {
    'v4': Chip('TPU v4', 275e12, 32 * GiB, 1200e9, 'cloud.google.com/tpu/docs/v4'),
    'v5e': Chip('TPU v5e', 197e12, 16 * GiB, 819e9, 'cloud.google.com/tpu/docs/v5e'),
    'v5p': Chip('TPU v5p', 459e12, 95 * GiB, 2765e9, 'cloud.google.com/tpu/docs/v5p'),
    'v6e': Chip('TPU v6e', 918e12, 32 * GiB, 1640e9, 'cloud.google.com/tpu/docs/v6e'),
}
_TOPOLOGY = re.compile(r'^(v4|v5e|v5p|v6e):(\d+(?:x\d+){1,2})$')
MODES = ('train', 'predict')


def tpu_library():
  """The path of libtpu.so: $TPU_LIBRARY_PATH, an installed ``libtpu`` package (a TPU VM's
  ``make ACCELERATOR=tpu``), or the compiler-only copy ``make tpu-compiler`` puts beside the
  virtual environment's packages; None when there is none."""
  path = os.environ.get('TPU_LIBRARY_PATH')
  if path and os.path.isfile(path):
    return path
  spec = importlib.util.find_spec('libtpu')
  candidates = [pathlib.Path(spec.origin).parent] if spec and spec.origin else []
  candidates.append(pathlib.Path(sys.prefix) / 'tpu-compiler' / 'libtpu')
  return next((str(p / 'libtpu.so') for p in candidates if (p / 'libtpu.so').is_file()), None)


def parse_topology(name):
  """'v5e:2x2' -> (its Chip, number of chips); one sentence for a name XLA:TPU cannot take."""
  match = _TOPOLOGY.match(name or '')
  if not match:
    raise UserError(f"--topology={name!r} is not a TPU topology; use GENERATION:SHAPE with a "
                    f"generation among {', '.join(CHIPS)} and chips per axis, e.g. v5e:2x2, "
                    'v6e:4x4, v4:2x2x1 or v5p:2x2x1.')
  return CHIPS[match.group(1)], math.prod(int(n) for n in match.group(2).split('x'))


def topology_devices(name):
  """The compile-only devices of the TPU topology ``name`` (one sentence when libtpu is missing
  or the topology is not one libtpu builds)."""
  parse_topology(name)
  library = tpu_library()
  if library is None:
    raise UserError("XLA:TPU's compiler (libtpu) is not installed here; `make tpu-compiler` "
                    'installs it into .venv (no TPU needed).')
  os.environ['TPU_LIBRARY_PATH'] = library
  # No TPU is opened: skip the metadata server and the worker list libtpu looks for, and its
  # lock on the TPU (/tmp/libtpu_lockfile), so several compiles (and a job training on this
  # host's TPU) can run at once.
  os.environ.setdefault('TPU_SKIP_MDS_QUERY', '1')
  os.environ.setdefault('TPU_WORKER_HOSTNAMES', 'localhost')
  os.environ.setdefault('ALLOW_MULTIPLE_LIBTPU_LOAD', '1')
  from jax.experimental import topologies
  try:
    return topologies.get_topology_desc(topology_name=name, platform='tpu').devices
  except jax.errors.JaxRuntimeError as e:
    reason = str(e).strip().split('\n')[0]
    if reason.startswith('INVALID_ARGUMENT: '):
      raise UserError(f'--topology={name!r} is not a topology libtpu can build: '
                      f"{reason.removeprefix('INVALID_ARGUMENT: ')}") from None
    raise UserError(f'libtpu ({library}) could not start: {reason}') from None


def _abstract(tree, sharding):
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


def _state_shapes(config):
  task = tasks.get(config.task)
  shape = (config.image_size, config.image_size)
  return task, jax.eval_shape(lambda r: task.init(r, config, shape), jax.random.PRNGKey(0))


def lowered_train_step(config, mesh):
  """``train.py``'s jitted training step over ``mesh``, lowered for its state and a batch, and
  the number of state leaves (the step's first parameters, donated)."""
  task, state = _state_shapes(config)
  batch = jax.eval_shape(lambda: benchmark.synthetic_batch(config, parallel.make_mesh()))
  step = train.jitted_train_step(task, config, mesh)
  return step.lower(_abstract(state, parallel.replicated(mesh)),
                    _abstract(batch, parallel.sharded(mesh))), len(jax.tree.leaves(state))


def lowered_predict(config, mesh, resolution):
  """The run's predict (what ``colorize`` and ``export`` run: L in, ab out) at ``resolution``,
  data-parallel over ``mesh``: weights replicated, a global batch of L sharded."""
  task, state = _state_shapes(config)
  replicated, sharded = parallel.replicated(mesh), parallel.sharded(mesh)
  L = jax.ShapeDtypeStruct((config.batch_size, resolution, resolution, 1), jnp.float32)
  predict = jax.jit(task.predict, in_shardings=(replicated, sharded), out_shardings=sharded)
  return predict.lower(_abstract(state.for_predict(), replicated),
                       _abstract(L, sharded))


def predict_model_flops(config, resolution):
  """The plain network's FLOPs of predict over the global batch at ``resolution`` (the function
  exported for CUDA, as ``benchmark.model_flops`` counts a training step)."""
  task, state = _state_shapes(config)
  L = jax.ShapeDtypeStruct((config.batch_size, resolution, resolution, 1), jnp.float32)
  exported = jax.export.export(jax.jit(task.predict), platforms=('cuda',))(
      state.for_predict(), L)
  return benchmark.stablehlo_flops(exported.mlir_module())


def aliased_parameters(hlo_text):
  """The parameter numbers of a compiled module that alias an output (donated buffers)."""
  header = hlo_text.split('\n', 1)[0]
  return {int(n) for n in re.findall(r': \((\d+), \{[^}]*\}, (?:may|must)-alias\)', header)}


def _cost(compiled):
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0]
  return float(analysis.get('flops', 0.0)), float(analysis.get('bytes accessed', 0.0))


def _does_not_fit(error):
  text = str(error)
  return 'RESOURCE_EXHAUSTED' in text or 'Ran out of memory' in text


def compile_report(config, topology, devices, mode='train', resolution=None, model_flops=None):
  """(report, compiled): ``config``'s training step (or predict at ``resolution``) compiled for
  ``devices`` of ``topology`` (``topology_devices``), with every figure of the report in a
  dict. A program XLA:TPU finds too large for HBM gives ``fits`` False, XLA's sentence and no
  compiled program, not an error. ``model_flops``: the plain network's per global batch, when
  already known."""
  chip, chips = parse_topology(topology)
  experiment.validate(config, devices=len(devices))
  config = experiment.frozen(config)
  resolution = resolution or config.image_size
  mesh = Mesh(np.asarray(devices), ('data',))
  per_chip = len(devices) // chips   # v4: one device per TensorCore, two per chip
  report = {
      'topology': topology, 'chip': chip.name, 'chips': chips, 'devices': len(devices),
      'device_kind': devices[0].device_kind, 'mode': mode, 'task': config.task,
      'model': config.model.get('preset'), 'compute_dtype': config.compute_dtype,
      'batch_size': config.batch_size, 'image_size': resolution,
      'hbm_per_device': chip.hbm_bytes // per_chip, 'chip_bf16_flops': chip.bf16_flops,
      'chip_hbm_bandwidth': chip.hbm_bandwidth, 'chip_source': chip.source,
      'jax': jax.__version__}
  start = time.perf_counter()
  if mode == 'train':
    lowered, state_leaves = lowered_train_step(config, mesh)
  else:
    lowered, state_leaves = lowered_predict(config, mesh, resolution), 0
  report['lower_s'] = time.perf_counter() - start
  start = time.perf_counter()
  try:
    compiled = lowered.compile()
  except jax.errors.JaxRuntimeError as e:
    if not _does_not_fit(e):
      raise
    report.update(fits=False, compile_s=time.perf_counter() - start,
                  error=str(e).strip().split('\n')[0])
    return report, None
  report['compile_s'] = time.perf_counter() - start
  memory = compiled.memory_analysis()
  total = (memory.argument_size_in_bytes + memory.output_size_in_bytes
           - memory.alias_size_in_bytes + memory.temp_size_in_bytes
           + memory.generated_code_size_in_bytes)
  report.update(
      argument_bytes=memory.argument_size_in_bytes, output_bytes=memory.output_size_in_bytes,
      alias_bytes=memory.alias_size_in_bytes, temp_bytes=memory.temp_size_in_bytes,
      code_bytes=memory.generated_code_size_in_bytes, total_bytes=total,
      fits=total <= report['hbm_per_device'])
  if model_flops is None:
    model_flops = (benchmark.model_flops(config, parallel.make_mesh()) if mode == 'train'
                   else predict_model_flops(config, resolution))
  flops, accessed = _cost(compiled)   # one device's share of the step
  images = config.batch_size / len(devices)
  peak, bandwidth = chip.bf16_flops / per_chip, chip.hbm_bandwidth / per_chip
  compute_s, memory_s = flops / peak, accessed / bandwidth
  step_s = max(compute_s, memory_s)
  aliased = aliased_parameters(compiled.as_text())
  report.update(
      xla_flops_per_image=flops / images, bytes_per_image=accessed / images,
      model_flops_per_image=model_flops / config.batch_size,
      intensity=flops / accessed if accessed else None,
      compute_s=compute_s, memory_s=memory_s, roofline_step_s=step_s,
      bound='compute' if compute_s >= memory_s else 'memory',
      images_per_s_per_chip=images * per_chip / step_s,
      roofline_utilisation=model_flops / len(devices) / peak / step_s,
      state_leaves=state_leaves, donated=all(n in aliased for n in range(state_leaves)))
  return report, compiled


def max_batch(config, topology, devices, mode='train', resolution=None, log=print):
  """(largest global batch that fits, its report): doubling from one image per device until a
  batch does not fit, then bisecting between the two in multiples of the device count."""
  step = len(devices)

  def fits(multiple):
    trial = config.copy_and_resolve_references()
    trial.batch_size = multiple * step
    report, _ = compile_report(trial, topology, devices, mode, resolution)
    log(f'  batch {trial.batch_size}: {_memory_line(report)}')
    return report if report['fits'] else None

  best, low = None, 1
  report = fits(low)
  if report is None:
    return 0, None
  best, high = report, 2
  while (report := fits(high)) is not None:
    best, low, high = report, high, 2 * high
  while high - low > 1:
    middle = (low + high) // 2
    report = fits(middle)
    if report is None:
      high = middle
    else:
      best, low = report, middle
  return low * step, best


def _gib(n):
  return f'{n / GiB:.2f} GiB'


def _memory_line(report):
  if 'total_bytes' not in report:
    return f"does not fit: {report['error']}"
  verdict = 'fits' if report['fits'] else 'does NOT fit'
  return f"{_gib(report['total_bytes'])} of {_gib(report['hbm_per_device'])} HBM, {verdict}"


def table(report):
  """The report as the console shows it: one figure a line."""
  what = (f"{report['task']} {report['model'] or ''} {report['mode']} {report['image_size']}², "
          f"global batch {report['batch_size']}, {report['compute_dtype']}").replace('  ', ' ')
  rows = [('target', f"{report['topology']}: {report['chips']} × {report['chip']} "
                     f"({report['devices']} devices, XLA:TPU via libtpu; compiler estimate, "
                     'not a measured run)'),
          ('program', what)]
  if 'total_bytes' not in report:
    rows += [('HBM', _memory_line(report)), ('compile', f"{report['compile_s']:.1f} s")]
    return '\n'.join(f'{name:>12}: {value}' for name, value in rows)
  rows += [
      ('HBM/device', f"arguments {_gib(report['argument_bytes'])} + temporaries "
                     f"{_gib(report['temp_bytes'])} + outputs {_gib(report['output_bytes'])} "
                     f"- aliased {_gib(report['alias_bytes'])} + code {_gib(report['code_bytes'])}"
                     f" = {_memory_line(report)}"),
      ('donation', f"{'every' if report['donated'] else 'NOT every'} state buffer aliased to "
                   f"an output ({report['state_leaves']} leaves)" if report['mode'] == 'train'
                   else 'none (predict)'),
      ('per image', f"{report['xla_flops_per_image'] / 1e9:.2f} GFLOP compiled "
                    f"({report['model_flops_per_image'] / 1e9:.2f} of the model's), "
                    f"{report['bytes_per_image'] / 1e6:.1f} MB accessed, "
                    f"{report['intensity']:.1f} FLOP/byte"),
      ('roofline', f"{1e3 * report['roofline_step_s']:.2f} ms a step ({report['bound']}-bound: "
                   f"compute {1e3 * report['compute_s']:.2f} ms, HBM {1e3 * report['memory_s']:.2f}"
                   f" ms), {report['images_per_s_per_chip']:,.0f} images/sec per chip, "
                   f"{100 * report['roofline_utilisation']:.1f}% of bf16 peak in model FLOPs"),
      ('chip', f"{report['chip']}: {report['chip_bf16_flops'] / 1e12:.0f} TFLOP/s bf16, "
               f"{report['chip_hbm_bandwidth'] / 1e9:.0f} GB/s HBM, "
               f"{_gib(report['hbm_per_device'] * report['devices'] // report['chips'])} "
               f"(published: {report['chip_source']})"),
      ('compile', f"{report['compile_s']:.1f} s (lowering {report['lower_s']:.1f} s)")]
  return '\n'.join(f'{name:>12}: {value}' for name, value in rows)


_INSTRUCTION = re.compile(r'^\s+(?:ROOT )?%(\S+) = (.+?) ([a-z][\w-]*)\((.*)$')
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_CYCLES = re.compile(r'"estimated_cycles":"(\d+)"')


def where_cycles_go(hlo_text, top=15):
  """The compiled TPU program's top-level instructions with the most of XLA:TPU's own estimated
  cycles: [{name, opcode, shape, cycles, share, source}], most first. ``source`` is the JAX
  operation it came from (its ``op_name``)."""
  entry = hlo_text[hlo_text.index('\nENTRY '):]
  entry = entry[:entry.index('\n}')]
  rows = []
  for line in entry.splitlines()[1:]:
    match, cycles = _INSTRUCTION.match(line), _CYCLES.search(line)
    if match and cycles:
      source = _OP_NAME.search(line)
      rows.append({'name': match.group(1), 'shape': re.sub(r'\{[^}]*\}', '', match.group(2)),
                   'opcode': match.group(3), 'cycles': int(cycles.group(1)),
                   'source': source.group(1) if source else ''})
  total = sum(r['cycles'] for r in rows) or 1
  for r in rows:
    r['share'] = r['cycles'] / total
  return sorted(rows, key=lambda r: -r['cycles'])[:top]
