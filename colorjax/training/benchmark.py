"""Training-step throughput of any config, on synthetic batches made on the device or on the
real input pipeline (end to end).

  colorjax bench --config=configs/unet.py --steps=50
  colorjax bench --config=configs/unet.py --input=pipeline
  python -m colorjax.main --config=configs/unet.py --workdir=runs/bench --config.mode=benchmark

'synthetic' input (the default) needs no tf.data and no TensorFlow: uint8 pictures are
generated on the devices, so it runs on accelerator machines that have only JAX. 'pipeline'
reads the config's data as training does and reports how long each step waited for it.
Reports the compile time (cold, and warm: loaded from the persistent compilation cache as a new
process would load it), the median and p90 step time, images/sec (total and per device), the
model's FLOPs per step (``model_flops``: the plain network's convolutions and matmuls, never a
CPU reformulation's), achieved TFLOP/s and the utilisation against the device's measured
matmul peak in the compute dtype; a table, then one JSON line.
"""
import functools
import json
import math
import re
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import tasks
from colorjax.core import compilation_cache, parallel, validation
from colorjax.training import experiment, runs, train


def synthetic_batch(config, mesh, seed=0):
  """uint8 RGB pictures ({"rgb"} or unpaired {"a", "b"}) of the global batch, made sharded on
  the devices: smooth colour waves of random direction, frequency and phase per image and
  channel, so that a network can learn them and its loss falls."""
  size = config.image_size
  names = ('a', 'b') if config.data.pairing == 'unpaired' else ('rgb',)
  y, x = jnp.mgrid[0:size, 0:size] / size

  def picture(key):
    direction, frequency, phase = jax.random.uniform(key, (3, 3), maxval=2 * math.pi)
    wave = (jnp.cos(direction) * x[..., None] + jnp.sin(direction) * y[..., None])
    rgb = 0.5 + 0.45 * jnp.sin((1 + frequency / 2) * wave + phase)
    return jnp.round(255 * rgb).astype(jnp.uint8)

  def make(key):
    keys = jax.random.split(key, (len(names), config.batch_size))
    return {n: jax.vmap(picture)(k) for n, k in zip(names, keys)}
  return jax.jit(make, out_shardings=parallel.sharded(mesh))(jax.random.PRNGKey(seed))


_TENSOR = re.compile(r'tensor<((?:\d+x)*)[a-z]\w*>')


def _dims(tensor_type):
  return [int(d) for d in tensor_type.split('x') if d]


def stablehlo_flops(module):
  """FLOPs of the convolutions and dot_generals in a StableHLO module's text (2 per
  multiply-add): what a network costs, whichever backend runs it. A convolution over an
  input dilated by zeros (a transposed conv, a strided conv's input gradient) counts only the
  taps that meet input pixels."""
  flops = 0
  for line in module.splitlines():
    if 'stablehlo.convolution' in line:
      layout = re.search(r'\]x\[([^\]]*)\]->', line).group(1).replace(' ', '').split(',')
      types = _TENSOR.findall(line.rsplit(' : ', 1)[1])
      kernel, out = _dims(types[1]), _dims(types[-1])
      dilation = re.search(r'lhs_dilate = \[([0-9, ]*)\]', line)
      zeros = math.prod(int(d) for d in dilation.group(1).split(',')) if dilation else 1
      flops += 2 * math.prod(out) * math.prod(kernel) // kernel[layout.index('o')] // zeros
    elif 'stablehlo.dot_general' in line:
      contracting = re.search(r'contracting_dims = \[([0-9, ]*)\]', line).group(1)
      types = _TENSOR.findall(line.rsplit(' : ', 1)[1])
      lhs, out = _dims(types[0]), _dims(types[-1])
      flops += 2 * math.prod(out) * math.prod(lhs[int(d)] for d in contracting.split(','))
  return flops


def model_flops(config, mesh):
  """FLOPs of one training step of ``config`` as the plain network computes them: the step
  exported for CUDA, which holds none of the CPU rewrites (``stablehlo_flops``)."""
  task = tasks.get(config.task)
  shape = (config.image_size, config.image_size)
  state = jax.eval_shape(lambda r: task.init(r, config, shape), jax.random.PRNGKey(0))
  batch = jax.eval_shape(lambda: synthetic_batch(config, mesh))
  step = train.jitted_train_step(task, config, mesh)
  exported = jax.export.export(step, platforms=('cuda',))(state, batch)
  return stablehlo_flops(exported.mlir_module())


def _flops(compiled):
  """FLOPs of one call by XLA's cost analysis (None when the backend gives none)."""
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else None
  flops = (analysis or {}).get('flops')
  return float(flops) if flops and flops > 0 else None


@functools.cache
def matmul_peak(dtype, size=4096, repeats=5):
  """Measured FLOP/s of one device on a square matmul in ``dtype`` (the utilisation baseline;
  measured once per process)."""
  x = jnp.ones((size, size), dtype)
  matmul = jax.jit(lambda a: a @ a)
  matmul(x).block_until_ready()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    matmul(x).block_until_ready()
    times.append(time.perf_counter() - start)
  return 2 * size ** 3 / statistics.median(times)


INPUTS = ('synthetic', 'pipeline')


def _synthetic_batches(config, mesh):
  batch = synthetic_batch(config, mesh)
  while True:
    yield batch


def _pipeline_batches(config, mesh):
  """Global batches from the training input pipeline, as training reads them (imports
  TensorFlow)."""
  from colorjax.data import pipeline
  batches = pipeline.train_batches(config, parallel.shard_of_data())
  try:
    while True:
      yield parallel.global_batch(next(batches), mesh)
  finally:
    batches.close()


def validate(config):
  """The training config and its ``benchmark`` fields, before anything compiles."""
  experiment.validate(config)
  validation.check_number(config, 'benchmark.steps', low=1, integer=True)
  validation.check_number(config, 'benchmark.warmup', low=0, integer=True)
  validation.check_choice(config, 'benchmark.input', INPUTS)


def _compile(step, state, batch):
  """(the compiled step, seconds from tracing to executable, whether the persistent
  compilation cache served it)."""
  hits = compilation_cache.counts()[1]
  start = time.perf_counter()
  compiled = step.lower(state, batch).compile()
  return compiled, time.perf_counter() - start, compilation_cache.counts()[1] > hits


def measure(config, peak=None, flops=None):
  """{compile_s, step_s_median, step_s_p90, images_per_s, data_wait_s_median, ...} of config's
  training step over ``config.benchmark.steps`` steps after ``warmup`` untimed ones.

  Each step is timed from asking for its batch to its metrics being ready, so with
  ``benchmark.input='pipeline'`` the step time includes waiting for the input pipeline (its
  share is ``data_wait_share``); with 'synthetic' the wait is only handing over a device batch.
  ``peak``: the FLOP/s of all devices that utilisation is a share of (default: the matmul peak
  measured here in the compute dtype); ``flops``: the model's FLOPs per step, when already
  known (default: ``model_flops``).
  """
  validate(config)
  config = experiment.frozen(config)
  steps, warmup = config.benchmark.steps, config.benchmark.warmup
  task, mesh = tasks.get(config.task), parallel.make_mesh()
  state = runs.init_state(task, config, mesh)
  make_batches = (_pipeline_batches if config.benchmark.input == 'pipeline'
                  else _synthetic_batches)
  batches = make_batches(config, mesh)
  try:
    batch = next(batches)
    step = train.jitted_train_step(task, config, mesh)
    compiled, compile_s, from_cache = _compile(step, state, batch)
    cold_s, warm_s = (None, compile_s) if from_cache else (compile_s, None)
    if not from_cache and compilation_cache.enabled():
      jax.clear_caches()   # as a new process would: trace again, and load what was saved
      compiled, seconds, loaded = _compile(step, state, batch)
      warm_s = seconds if loaded else None
    for _ in range(warmup):
      state, metrics = compiled(state, next(batches))
    jax.block_until_ready(state)
    times, waits, history = [], [], []
    for _ in range(steps):
      start = time.perf_counter()
      batch = next(batches)
      waits.append(time.perf_counter() - start)
      state, metrics = compiled(state, batch)
      jax.block_until_ready(metrics)
      times.append(time.perf_counter() - start)
      history.append(metrics)
  finally:
    batches.close()
  median = statistics.median(times)
  flops = flops or model_flops(config, mesh)
  peak = peak or matmul_peak(jnp.dtype(config.compute_dtype)) * jax.device_count()
  window = max(1, steps // 10)   # the metrics' means over the first and last tenth of the steps
  history = [{k: float(v) for k, v in m.items()} for m in jax.device_get(history)]
  mean = lambda rows: {k: statistics.fmean(r[k] for r in rows) for k in rows[0]}
  result = {
      'task': config.task, 'model': config.model.get('preset'),
      'device': jax.devices()[0].device_kind, 'devices': jax.device_count(),
      'batch_size': config.batch_size, 'input': config.benchmark.input,
      'image_size': config.image_size, 'compute_dtype': config.compute_dtype,
      'compile_s': compile_s, 'compile_from_cache': from_cache, 'compile_cold_s': cold_s,
      'compile_warm_s': warm_s, 'step_s_median': median,
      'step_s_p90': float(np.percentile(times, 90)), 'steps': steps,
      'data_wait_s_median': statistics.median(waits),
      'data_wait_s_p90': float(np.percentile(waits, 90)),
      'data_wait_share': sum(waits) / sum(times),
      'images_per_s': config.batch_size / median,
      'images_per_s_per_device': config.batch_size / median / jax.device_count(),
      'flops_per_step': flops, 'flops_per_image': flops / config.batch_size,
      'xla_flops_per_step': _flops(compiled), 'tflops_per_s': flops / median / 1e12,
      'matmul_peak_tflops_per_s': peak / 1e12, 'utilisation': flops / median / peak,
      'metrics_first': mean(history[:window]), 'metrics_last': mean(history[-window:])}
  return result


def _compile_line(result):
  cold, warm = result.get('compile_cold_s'), result.get('compile_warm_s')
  parts = [f'{cold:.1f} s cold' if cold is not None else
           "cold not measured (the compilation cache served it; --config.compilation_cache_dir='' "
           'compiles cold)',
           f'{warm:.1f} s warm (from the compilation cache)' if warm is not None else
           'warm not measured (compilation cache off, or the program was not saved)']
  return ', '.join(parts)


def table(result):
  rows = [('device', f"{result['devices']} × {result['device']}"),
          ('workload', f"{result['task']} {result['model']} {result['image_size']}², batch "
                       f"{result['batch_size']}, {result['compute_dtype']}, "
                       f"{result['input']} input"),
          ('compile', _compile_line(result)),
          ('step time', f"median {1e3 * result['step_s_median']:.1f} ms, p90 "
                        f"{1e3 * result['step_s_p90']:.1f} ms over {result['steps']} steps"),
          ('images/sec', f"{result['images_per_s']:.1f} ({result['images_per_s_per_device']:.1f}"
                         ' per device)'),
          ('data wait', f"median {1e3 * result['data_wait_s_median']:.1f} ms, p90 "
                        f"{1e3 * result['data_wait_s_p90']:.1f} ms, "
                        f"{100 * result['data_wait_share']:.1f}% of the step time")]
  rows += [('FLOPs/step', f"{result['flops_per_step'] / 1e9:.2f} G (the model's convolutions "
                          'and matmuls)'),
           ('achieved', f"{result['tflops_per_s']:.3f} TFLOP/s = "
                        f"{100 * result['utilisation']:.1f}% of the measured matmul peak "
                        f"({result['matmul_peak_tflops_per_s']:.3f} TFLOP/s)")]
  return '\n'.join(f'{name:>11}: {value}' for name, value in rows)


def report(config):
  result = measure(config)
  print(table(result))
  print(json.dumps(result))
  return result
