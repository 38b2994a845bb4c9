"""Training-step throughput of any config on synthetic batches made on the device.

  colorjax bench --config=configs/unet.py --steps=50
  python -m colorjax.main --config=configs/unet.py --workdir=runs/bench --config.mode=benchmark

No tf.data and no TensorFlow: random uint8 batches are generated on the devices, so this runs
on accelerator machines that have only JAX. Reports compile time, the median and p90 step time,
images/sec (total and per device), FLOPs per step from XLA's cost analysis, achieved TFLOP/s
and the utilisation against the device's measured matmul peak in the compute dtype; a table,
then one JSON line.
"""
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import parallel, runs, tasks, train, validation


def synthetic_batch(config, mesh, seed=0):
  """Random uint8 RGB ({"rgb"} or unpaired {"a", "b"}) of the global batch, made sharded on the
  devices."""
  shape = (config.batch_size, config.image_size, config.image_size, 3)
  names = ('a', 'b') if config.data.pairing == 'unpaired' else ('rgb',)

  def make(key):
    keys = jax.random.split(key, len(names))
    return {n: jax.random.randint(k, shape, 0, 256, jnp.int32).astype(jnp.uint8)
            for n, k in zip(names, keys)}
  return jax.jit(make, out_shardings=parallel.sharded(mesh))(jax.random.PRNGKey(seed))


def _flops(compiled):
  """FLOPs of one call by XLA's cost analysis (None when the backend gives none)."""
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else None
  flops = (analysis or {}).get('flops')
  return float(flops) if flops and flops > 0 else None


def matmul_peak(dtype, size=4096, repeats=5):
  """Measured FLOP/s of one device on a square matmul in ``dtype`` (the utilisation baseline)."""
  x = jnp.ones((size, size), dtype)
  matmul = jax.jit(lambda a: a @ a)
  matmul(x).block_until_ready()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    matmul(x).block_until_ready()
    times.append(time.perf_counter() - start)
  return 2 * size ** 3 / statistics.median(times)


def measure(config, steps=20, warmup=3):
  """{compile_s, step_s_median, step_s_p90, images_per_s, ...} of config's training step."""
  validation.validate(config)
  config = validation.frozen(config)
  task, mesh = tasks.get(config.task), parallel.make_mesh()
  state = runs.init_state(task, config, mesh)
  batch = synthetic_batch(config, mesh)
  step = train.jitted_train_step(task, config, mesh)
  start = time.perf_counter()
  compiled = step.lower(state, batch).compile()
  compile_s = time.perf_counter() - start
  for _ in range(warmup):
    state, metrics = compiled(state, batch)
  jax.block_until_ready(state)
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    state, metrics = compiled(state, batch)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - start)
  median = statistics.median(times)
  flops = _flops(compiled)
  peak = matmul_peak(jnp.dtype(config.compute_dtype)) * jax.device_count()
  result = {
      'task': config.task, 'model': config.model.get('preset'),
      'device': jax.devices()[0].device_kind, 'devices': jax.device_count(),
      'batch_size': config.batch_size,
      'image_size': config.image_size, 'compute_dtype': config.compute_dtype,
      'compile_s': compile_s, 'step_s_median': median,
      'step_s_p90': float(np.percentile(times, 90)), 'steps': steps,
      'images_per_s': config.batch_size / median,
      'images_per_s_per_device': config.batch_size / median / jax.device_count(),
      'flops_per_step': flops, 'tflops_per_s': flops / median / 1e12 if flops else None,
      'matmul_peak_tflops_per_s': peak / 1e12,
      'utilisation': flops / median / peak if flops else None}
  return result


def table(result):
  rows = [('device', f"{result['devices']} × {result['device']}"),
          ('workload', f"{result['task']} {result['model']} {result['image_size']}², batch "
                       f"{result['batch_size']}, {result['compute_dtype']}"),
          ('compile', f"{result['compile_s']:.1f} s"),
          ('step time', f"median {1e3 * result['step_s_median']:.1f} ms, p90 "
                        f"{1e3 * result['step_s_p90']:.1f} ms over {result['steps']} steps"),
          ('images/sec', f"{result['images_per_s']:.1f} ({result['images_per_s_per_device']:.1f}"
                         ' per device)')]
  if result['flops_per_step']:
    rows += [('FLOPs/step', f"{result['flops_per_step'] / 1e9:.2f} G"),
             ('achieved', f"{result['tflops_per_s']:.3f} TFLOP/s = "
                          f"{100 * result['utilisation']:.1f}% of the measured matmul peak "
                          f"({result['matmul_peak_tflops_per_s']:.3f} TFLOP/s)")]
  return '\n'.join(f'{name:>11}: {value}' for name, value in rows)


def report(config, steps, warmup):
  result = measure(config, steps, warmup)
  print(table(result))
  print(json.dumps(result))
  return result
