"""The accelerator benchmark: every family's training step on one GPU or TPU, in float32 and
bfloat16 at a throughput batch, against the device's matmul peak and against PyTorch.

  python -m benchmarks.accelerator --out=results     # one H200: within 8 minutes
  python -m benchmarks.accelerator --smoke --out=/tmp/smoke   # tiny sizes on a CPU

Needs JAX, Flax, Optax, Orbax and colorjax's pure-Python needs (absl-py, ml_collections,
dm-pix, chex); no TensorFlow and no clu. On a machine without ml_collections or dm-pix, carry
their wheels (``pip download --no-deps ml_collections dm-pix``) and put them on PYTHONPATH.

Workloads, each colorjax's training step from a uint8 batch on the device (synthetic pictures,
``colorjax.training.benchmark.synthetic_batch``):

  unet256   the pix2pix U-Net-256 (transposed-conv decoder), L1 on ab, 256²
  pix2pix   that U-Net + a 70x70 PatchGAN, 256² (vanilla GAN + 100 L1)
  cyclegan  two ResNet-9 generators + two PatchGANs, 256² (LSGAN, cycle, identity)
  portrait  the portrait U-Net at 128² (configs/unet.py)
  fusion    the fusion CNN with its VGG16 branch at 128² (configs/fusion.py)
  classify  classification over ab bins at 128² (configs/classify.py)

For each, float32 and bfloat16: compile time, median and p90 step time, images/sec per device,
the model's FLOPs per image (the plain network's convolutions and matmuls,
``colorjax.training.benchmark.model_flops``), achieved TFLOP/s, and its share of the bf16 matmul
peak measured in this run and, where the device is known, of its published dense bf16 peak. The
bfloat16 run is also a synthetic training run (``--train_steps`` steps on one batch): its
loss, over the first and last tenth of the steps, must fall. Where PyTorch is importable, the
first three workloads also run in PyTorch (``benchmarks/vs_pytorch.py``'s modules, bf16
autocast), eagerly and under ``torch.compile``, at the same batch. Where PyAV is importable
(the ``video`` extra; carry its wheel to a machine without it), a film row: ``colorize`` of a
synthetic 640x480 film, 100 frames, with the portrait U-Net in bf16, decoding, the colour
maths and encoding on the host included, in frames/sec.

Writes accelerator.md (the tables) and accelerator.json (every figure) to ``--out``; exits 1
when a workload failed or a loss did not fall.
"""
import argparse
import importlib.util
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import vs_pytorch
from colorjax import tasks
from colorjax.core import parallel
from colorjax.inference import Colorizer
from colorjax.training import benchmark, experiment

# name: (vs_pytorch workload or config file, throughput batch, image size)
WORKLOADS = {
    'unet256': ('unet', 64, 256),
    'pix2pix': ('pix2pix', 64, 256),
    'cyclegan': ('cyclegan', 16, 256),
    'portrait': ('unet', 128, 128),
    'fusion': ('fusion', 64, 128),
    'classify': ('classify', 64, 128),
}
TORCH_WORKLOADS = {'unet256': 'unet', 'pix2pix': 'pix2pix', 'cyclegan': 'cyclegan'}
# The training metrics that must fall on a fixed batch: the whole loss, or a GAN's
# reconstruction terms (the adversarial ones need not fall).
TRACKED = {'regression': ('loss',), 'classification': ('loss',), 'paired_gan': ('g_l1',),
           'cyclegan': ('cycle_a', 'cycle_b')}
# Published dense bf16 matmul peaks (TFLOP/s), by device kind; SXM parts for NVIDIA.
PUBLISHED_BF16_PEAK = {'H200': 989.4, 'H100': 989.4, 'A100': 312.0, 'L4': 121.0,
                       'TPU v4': 275.0, 'TPU v5 lite': 197.0, 'TPU v5e': 197.0,
                       'TPU v5p': 459.0, 'TPU v6 lite': 918.0, 'TPU v6e': 918.0}
# --smoke: every workload at 32², batch 2, on thin networks (the fields its config has).
SMOKE_FIELDS = {'model.features': (4, 8, 8, 8, 8), 'model.width': 4, 'model.blocks': 1,
                'gan.d_features': 4}
SMOKE_THIN = {'portrait': (4, 8), 'classify': (4, 8)}


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--out', required=True, help='folder for accelerator.md and .json')
  parser.add_argument('--smoke', action='store_true',
                      help='tiny sizes and few steps: checks the whole benchmark on a CPU')
  parser.add_argument('--workloads', type=vs_pytorch.csv_of(str, WORKLOADS),
                      default=list(WORKLOADS))
  parser.add_argument('--steps', type=int, default=None, help='timed float32 steps (20)')
  parser.add_argument('--train_steps', type=int, default=None,
                      help='bfloat16 steps, timed and trained on one batch (200)')
  parser.add_argument('--warmup', type=int, default=3)
  parser.add_argument('--no_torch', action='store_true', help='skip the PyTorch rows')
  args = parser.parse_args(argv)
  args.steps = args.steps or (3 if args.smoke else 20)
  args.train_steps = args.train_steps or (20 if args.smoke else 200)
  if args.smoke:
    args.warmup = min(args.warmup, 1)
  return args


def workload_config(name, dtype, smoke):
  """The workload's colorjax config at its throughput batch (or at --smoke's tiny size)."""
  source, batch, size = WORKLOADS[name]
  if smoke:
    batch, size = 2, 32
  if name in TORCH_WORKLOADS:
    config = vs_pytorch.colorjax_config(source, batch, size, dtype, 'transpose')
    if isinstance(config, str):
      raise LookupError(config)
  else:
    config = vs_pytorch.load_config(source)
    config.image_size, config.batch_size, config.compute_dtype = size, batch, dtype
  if smoke:
    # A family's config holds only its own fields: set those it has.
    config.update_from_flattened_dict({k: v for k, v in SMOKE_FIELDS.items()
                                       if k.split('.')[1] in config.get(k.split('.')[0], {})})
    if name in SMOKE_THIN:
      config.model.features = SMOKE_THIN[name]
  config.benchmark.input = 'synthetic'
  experiment.validate(config)
  return config


def published_peak(device_kind):
  """The device's published dense bf16 peak in FLOP/s, or None for an unknown device."""
  for kind, tflops in PUBLISHED_BF16_PEAK.items():
    if kind.lower() in device_kind.lower():
      return tflops * 1e12
  return None


def loss_falls(task, result):
  first = sum(result['metrics_first'][k] for k in TRACKED[task])
  last = sum(result['metrics_last'][k] for k in TRACKED[task])
  return first, last, last < first


def run_colorjax(name, dtype, args, peak, flops):
  """One workload in one dtype: its row of the table. ``flops``: the model's per step."""
  config = workload_config(name, dtype, args.smoke)
  training = dtype == 'bfloat16'
  config.benchmark.steps = args.train_steps if training else args.steps
  config.benchmark.warmup = 0 if training else args.warmup   # the loss from the first step
  result = benchmark.measure(config, peak=peak * jax.device_count(), flops=flops)
  row = {'workload': name, **{k: result[k] for k in (
      'task', 'compute_dtype', 'batch_size', 'image_size', 'devices', 'compile_s',
      'step_s_median', 'step_s_p90', 'images_per_s_per_device', 'flops_per_image',
      'tflops_per_s', 'steps')}}
  row['measured_peak_share'] = result['utilisation']
  published = published_peak(result['device'])
  row['published_peak_share'] = (result['tflops_per_s'] * 1e12 / jax.device_count() / published
                                 if published else None)
  if training:
    row['loss_first'], row['loss_last'], row['loss_falls'] = loss_falls(config.task, result)
  return row


def run_torch(name, args, log):
  """PyTorch's eager and torch.compile images/sec of a workload in bf16 (None where not run)."""
  import torch
  device = vs_pytorch.torch_device()
  _, batch, size = WORKLOADS[name]
  if args.smoke:
    batch = 1   # PyTorch's modules are the full networks: 256² only
  row = {'workload': name, 'device': str(device), 'batch_size': batch, 'image_size': size}
  for mode in ('eager', 'compile'):
    if mode == 'compile' and args.smoke:
      row['compile'], row['compile_note'] = None, 'not run in --smoke (minutes on a CPU)'
      continue
    log(f'PyTorch {name} {mode}...')
    measured = vs_pytorch.measure_torch(TORCH_WORKLOADS[name], batch, size, args.steps,
                                        args.warmup, 'bfloat16', device,
                                        compiled=mode == 'compile')
    row[mode] = measured['images_per_s']
    del measured
    if device.type == 'cuda':
      torch.cuda.empty_cache()
  return row


FILM = (480, 640, 100)   # height, width, frames of the film row's synthetic film (--smoke: 10)


def write_film(path, frames):
  """A synthetic 640x480 H.264 film: colour gradients drifting under film grain."""
  import av  # noqa: PLC0415  (optional: the video extra; the row is skipped without it)
  height, width, _ = FILM
  y, x = np.mgrid[:height, :width]
  grain = np.random.default_rng(0)
  with av.open(str(path), 'w') as container:
    stream = container.add_stream('libx264', rate=25)
    stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
    for i in range(frames):
      rgb = np.stack([(x + 3 * i) % 256, (y + 2 * i) % 256, (x + y) // 5 % 256], -1)
      rgb = np.clip(rgb + grain.normal(0, 4, rgb.shape), 0, 255).astype(np.uint8)
      frame = av.VideoFrame.from_ndarray(rgb, format='rgb24')
      frame.pts = i
      container.mux(stream.encode(frame))
    container.mux(stream.encode())


def run_film(args, folder):
  """``Colorizer.colorize_video`` on the synthetic film with the portrait U-Net (random
  weights, bf16): the whole pipeline's frames/sec, decoding and encoding included."""
  config = workload_config('portrait', 'bfloat16', args.smoke)
  task = tasks.get(config.task)
  shape = (config.image_size,) * 2
  state = jax.jit(lambda rng: task.init(rng, config, shape))(jax.random.PRNGKey(0))
  predict = jax.jit(task.predict)
  colorizer = Colorizer(lambda L: predict(state, L), config.image_size, batch_size=16)
  frames = 10 if args.smoke else FILM[2]
  write_film(folder / 'film.mp4', frames)
  colorizer.colorize_video(str(folder / 'film.mp4'), str(folder / 'warm-up.mp4'))  # compiles
  film = colorizer.colorize_video(str(folder / 'film.mp4'), str(folder / 'colour.mp4'))
  return {'network': f'portrait U-Net, bf16, {config.image_size}²', 'frames': film.frames,
          'size': f'{FILM[1]}x{FILM[0]}', 'frames_per_s': film.frames_per_sec}


def _fmt(value, spec, scale=1.0, none='—'):
  return none if value is None else format(value * scale, spec)


def markdown(report):
  env = report['environment']
  lines = [f"{env['devices']} × {env['device']}, JAX {env['jax']}; measured bf16 matmul peak "
           f"{report['measured_bf16_peak_tflops']:.1f} TFLOP/s per device; published "
           f"{_fmt(report['published_bf16_peak_tflops'], '.1f')} TFLOP/s.", '',
           '| workload | dtype | batch | compile s | step ms (median / p90) | img/s/device '
           '| model GFLOP/img | TFLOP/s | % measured bf16 peak | % published bf16 peak '
           '| loss first → last |',
           '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|']
  for r in report['rows']:
    if 'error' in r:
      lines.append(f"| {r['workload']} | {r['compute_dtype']} | failed: {r['error']} |")
      continue
    loss = (f"{r['loss_first']:.4f} → {r['loss_last']:.4f}"
            f"{'' if r['loss_falls'] else ' (did not fall)'} in {r['steps']} steps"
            if 'loss_falls' in r else '')
    lines.append(
        f"| {r['workload']} | {r['compute_dtype']} | {r['batch_size']} | {r['compile_s']:.1f} "
        f"| {1e3 * r['step_s_median']:.1f} / {1e3 * r['step_s_p90']:.1f} "
        f"| {r['images_per_s_per_device']:.1f} | {r['flops_per_image'] / 1e9:.2f} "
        f"| {r['tflops_per_s']:.2f} | {100 * r['measured_peak_share']:.1f} "
        f"| {_fmt(r['published_peak_share'], '.1f', 100)} | {loss} |")
  if report['torch']:
    lines += ['', '| workload (bf16) | PyTorch eager img/s | torch.compile img/s '
              '| colorjax img/s | colorjax / eager | colorjax / compile |',
              '|---|---:|---:|---:|---:|---:|']
    ours = {r['workload']: r for r in report['rows']
            if r.get('compute_dtype') == 'bfloat16' and 'error' not in r}
    for t in report['torch']:
      if 'error' in t:
        lines.append(f"| {t['workload']} | failed: {t['error']} |")
        continue
      mine = ours.get(t['workload'])
      same = mine and mine['batch_size'] == t['batch_size']   # --smoke: not comparable
      rate = mine['images_per_s_per_device'] * mine['devices'] if same else None
      ratio = lambda theirs: f'{rate / theirs:.2f}×' if rate and theirs else '—'
      lines.append(f"| {t['workload']} | {_fmt(t['eager'], '.3g')} "
                   f"| {_fmt(t['compile'], '.3g', none=t.get('compile_note', '—'))} "
                   f"| {_fmt(rate, '.3g')} | {ratio(t['eager'])} | {ratio(t['compile'])} |")
  elif report['torch_note']:
    lines += ['', report['torch_note']]
  film = report.get('film')
  if film and 'error' in film:
    lines += ['', f"Film: failed: {film['error']}"]
  elif film:
    lines += ['', f"Film ({film['size']}, {film['frames']} frames, {film['network']}, "
                  f"decoding and encoding included): {film['frames_per_s']:.1f} frames/s."]
  elif report.get('film_note'):
    lines += ['', report['film_note']]
  return '\n'.join(lines) + '\n'


def main(argv=None):
  args = parse_args(argv)
  if args.smoke:   # XLA's cheapest code generation: --smoke checks, it does not time
    os.environ['XLA_FLAGS'] = (f"{os.environ.get('XLA_FLAGS', '')} "
                               '--xla_backend_optimization_level=0').strip()
  log = lambda message: print(message, file=sys.stderr, flush=True)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  start = time.perf_counter()
  device = jax.devices()[0]
  peak = benchmark.matmul_peak(jnp.dtype(jnp.bfloat16), size=512 if args.smoke else 8192)
  published = published_peak(device.device_kind)
  report = {'environment': {'device': device.device_kind, 'devices': jax.device_count(),
                            'platform': device.platform, 'jax': jax.__version__,
                            'python': platform.python_version(), 'smoke': args.smoke},
            'measured_bf16_peak_tflops': peak / 1e12,
            'published_bf16_peak_tflops': published / 1e12 if published else None,
            'rows': [], 'torch': [], 'torch_note': None}
  mesh = parallel.make_mesh()
  for name in args.workloads:
    flops = None
    for dtype in ('float32', 'bfloat16'):
      log(f'colorjax {name} {dtype}...')
      try:
        if dtype == 'float32':   # the same convolutions and matmuls in either dtype
          flops = benchmark.model_flops(workload_config(name, dtype, args.smoke), mesh)
        report['rows'].append(run_colorjax(name, dtype, args, peak, flops))
      except Exception as e:  # one broken workload must not hide the others' figures
        report['rows'].append({'workload': name, 'compute_dtype': dtype,
                               'error': f'{type(e).__name__}: {e}'})
  torch_names = [n for n in args.workloads if n in TORCH_WORKLOADS]
  if args.no_torch:
    report['torch_note'] = 'PyTorch: not run (--no_torch).'
  elif torch_names and importlib.util.find_spec('torch') is None:
    report['torch_note'] = 'PyTorch: not installed here, so no PyTorch rows.'
  else:
    for name in torch_names:
      try:
        report['torch'].append(run_torch(name, args, log))
      except Exception as e:
        report['torch'].append({'workload': name, 'error': f'{type(e).__name__}: {e}'})
  if importlib.util.find_spec('av') is None:
    report['film_note'] = 'Film: PyAV is not installed here, so no film row.'
  else:
    log('colorjax film...')
    try:
      with tempfile.TemporaryDirectory() as folder:
        report['film'] = run_film(args, pathlib.Path(folder))
    except Exception as e:
      report['film'] = {'error': f'{type(e).__name__}: {e}'}
  report['environment']['wall_s'] = time.perf_counter() - start
  report['environment']['imported'] = sorted(
      {m.split('.')[0] for m in sys.modules} & {'tensorflow', 'clu', 'keras'})
  table = markdown(report)
  (out / 'accelerator.md').write_text(table)
  (out / 'accelerator.json').write_text(json.dumps(report, indent=2))
  print(table, end='')
  failed = [r['workload'] for r in report['rows'] + report['torch'] if 'error' in r]
  failed += ['film'] if 'error' in report.get('film', {}) else []
  flat = [r['workload'] for r in report['rows'] if r.get('loss_falls') is False]
  if failed or flat:
    log(f'failed: {failed or "none"}; loss did not fall: {flat or "none"}.')
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
