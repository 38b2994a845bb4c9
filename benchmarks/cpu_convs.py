"""Each XLA:CPU conv formulation (colorjax/models/cpu_convs.py, through the layers of
colorjax/models/convs.py) against the plain Flax layer it replaces:
jitted forward + backward (input and params) of one layer, median of ``--repeats`` runs.

  python -m benchmarks.cpu_convs
  python -m benchmarks.cpu_convs --batch=8 --repeats=7
  python -m benchmarks.cpu_convs --parts      # XLA's stride-2 convs part by part, and PyTorch's
  python -m benchmarks.cpu_convs --groups --batch=8   # gradients by image group or whole batch
  python -m benchmarks.cpu_convs --step --batch=8     # the pix2pix step's convs against PyTorch's

The shapes are the ones that dominate the U-Net-256 and CycleGAN steps at 256², and VGG16's
deepest convs. ``--parts`` times the forward, input gradient and weight gradient of the
PatchGAN's and the ResNet's stride-2 convs in XLA, next to PyTorch's whole fwd+bwd of the same
conv where PyTorch is installed (pip install -e '.[bench]'). ``--groups`` times colorjax's
layers with their gradients taken by image group (the default) and over the whole batch
(``cpu_convs.MAX_IMAGE_GROUPS = 1``). ``--step`` times the forward, input gradient and weight
gradient of every big conv of the pix2pix step (U-Net-256 + PatchGAN at 256²) as colorjax's
layer and as PyTorch's, and weights each part by how often one training step runs it.
"""
import argparse
import os
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp

from colorjax.cli import host_memory
from colorjax.models import convs, cpu_convs, pixels


def _layers():
  """(name, input [H, W, C], colorjax's module and input map, Flax's)."""
  def reflected(features, kernel):
    pad = kernel // 2
    ours = convs.ReflectPaddedConv(features, (kernel, kernel), padding=((pad, pad), (pad, pad)))
    theirs = nn.Conv(features, (kernel, kernel), padding='VALID')
    return (ours, lambda x: x), (theirs, lambda x: pixels.reflect_pad(x, pad))

  def plain(features, kernel, strides=1, padding='SAME'):
    options = dict(kernel_size=(kernel, kernel), strides=(strides, strides), padding=padding)
    return ((convs.Conv(features, **options), lambda x: x),
            (nn.Conv(features, **options), lambda x: x))

  def transposed(features):
    theirs = nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding='SAME')
    return (convs.ConvTranspose2x(features), lambda x: x), (theirs, lambda x: x)

  return [('transposed 4x4/2 128->64 at 128²', (128, 128, 128), *transposed(64)),
          ('transposed 4x4/2 1024->256 at 16²', (16, 16, 1024), *transposed(256)),
          ('output head 7x7 64->2 at 256², SAME', (256, 256, 64), *plain(2, 7)),
          ('output head 1x1 64->2 at 256²', (256, 256, 64), *plain(2, 1)),
          ('reflection output head 7x7 64->2 at 256²', (256, 256, 64), *reflected(2, 7)),
          ('Winograd 3x3 256->256 at 64²', (64, 64, 256), *plain(256, 3)),
          ('Winograd 3x3 512->512 at 32²', (32, 32, 512), *plain(512, 3)),
          ('Winograd 4x4 256->512 at 32², padding 1', (32, 32, 256),
           *plain(512, 4, padding=((1, 1), (1, 1)))),
          ('matmul 4x4/2 512->512 at 16²', (16, 16, 512), *plain(512, 4, 2, ((1, 1), (1, 1)))),
          ('matmul: transposed 4x4/2 1024->512 at 4²', (4, 4, 1024), *transposed(512)),
          ('reflection (Winograd) 3x3 256->256 at 64²', (64, 64, 256), *reflected(256, 3)),
          ('reflection 7x7 3->64 at 256²', (256, 256, 3), *reflected(64, 7))]


def median_seconds(run, repeats):
  """Median wall time of ``run()`` (which blocks until done) over ``repeats``, after one."""
  run()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def time_layer(module, prepare, x, repeats):
  """Median seconds of one jitted forward + backward of ``module`` on ``prepare(x)``."""
  params = module.init(jax.random.PRNGKey(0), prepare(x))
  grad = jax.jit(jax.grad(lambda p, x: jnp.sum(module.apply(p, prepare(x)) ** 2),
                          argnums=(0, 1)))
  return median_seconds(lambda: jax.block_until_ready(grad(params, x)), repeats)


def part_seconds(apply, params, x, repeats):
  """Median seconds of ``apply(params, x)``'s forward, input gradient and weight gradient, each
  jitted on its own. The output gradient is an argument: a constant one lets XLA simplify the
  gradients it takes part in."""
  dy = jax.random.normal(jax.random.PRNGKey(2), apply(params, x).shape)
  parts = (jax.jit(lambda p, x, dy: apply(p, x)),
           jax.jit(lambda p, x, dy: jax.vjp(lambda x: apply(p, x), x)[1](dy)),
           jax.jit(lambda p, x, dy: jax.vjp(lambda p: apply(p, x), p)[1](dy)))
  return [median_seconds(lambda f=f: jax.block_until_ready(f(params, x, dy)), repeats)
          for f in parts]


# (input [H, W, C], features, kernel, stride): the PatchGAN's 4x4 and the ResNet's 3x3 convs
STRIDED = [((128, 128, 64), 128, 4, 2), ((64, 64, 128), 256, 4, 2),
           ((256, 256, 64), 128, 3, 2), ((128, 128, 128), 256, 3, 2)]


def time_parts(shape, features, kernel, stride, batch, repeats):
  """Median seconds of XLA's forward, input gradient and weight gradient of one conv (padding
  1), and of PyTorch's fwd+bwd of it (None without PyTorch)."""
  x = jax.random.normal(jax.random.PRNGKey(0), (batch, *shape))
  w = jax.random.normal(jax.random.PRNGKey(1), (kernel, kernel, shape[-1], features)) * 0.05
  conv = lambda x, w: jax.lax.conv_general_dilated(x, w, (stride,) * 2, ((1, 1), (1, 1)),
                                                   dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  times = dict(zip(('forward', 'input gradient', 'weight gradient'),
                   part_seconds(lambda w, x: conv(x, w), w, x, repeats)))
  try:
    import torch
  except ImportError:
    return times, None
  torch.set_num_threads(os.cpu_count())
  xt = torch.randn(batch, shape[-1], *shape[:2], requires_grad=True)
  layer = torch.nn.Conv2d(shape[-1], features, kernel, stride, 1, bias=False)

  def torch_step():
    y = layer(xt)
    y.backward(torch.ones_like(y))
  return times, median_seconds(torch_step, repeats)


# (name, input [H, W, C], colorjax's layer): big-output convs of the U-Net, PatchGAN and ResNet
GROUPED = [('3x3 128->128 at 128²', (128, 128, 128), lambda: convs.Conv(128, (3, 3))),
           ('3x3/2 64->128 at 256²', (256, 256, 64), lambda: convs.Conv(128, (3, 3), (2, 2))),
           ('4x4/2 64->128 at 128²', (128, 128, 64), lambda: convs.Conv(128, (4, 4), (2, 2))),
           ('4x4 256->512 at 32², padding 1', (32, 32, 256),
            lambda: convs.Conv(512, (4, 4), padding=((1, 1), (1, 1)))),
           ('transposed 4x4/2 128->64 at 128²', (128, 128, 128),
            lambda: convs.ConvTranspose2x(64))]


def time_groups(batch, repeats):
  """Median seconds of each GROUPED layer's fwd+bwd over the whole batch and by image group."""
  default = cpu_convs.MAX_IMAGE_GROUPS
  for name, shape, make in GROUPED:
    x = jax.random.normal(jax.random.PRNGKey(1), (batch, *shape))
    times = []
    for groups in (1, default):
      cpu_convs.MAX_IMAGE_GROUPS = groups           # read when the gradient is traced
      times.append(time_layer(make(), lambda x: x, x, repeats))
    cpu_convs.MAX_IMAGE_GROUPS = default
    yield name, *times


# (name, kind, input side, C, F, stride, (forwards, input gradients, weight gradients) in one
# pix2pix step: G once; D on real and fake, then on the fake for G, whose input gradient
# reaches D's first conv only then)
PIX2PIX_STEP = [
    ('G down 1->64 from 256²', 'conv', 256, 1, 64, 2, (1, 0, 1)),
    ('G down 64->128 from 128²', 'conv', 128, 64, 128, 2, (1, 1, 1)),
    ('G down 128->256 from 64²', 'conv', 64, 128, 256, 2, (1, 1, 1)),
    ('G down 256->512 from 32²', 'conv', 32, 256, 512, 2, (1, 1, 1)),
    ('G down 512->512 from 16²', 'conv', 16, 512, 512, 2, (1, 1, 1)),
    ('G up 1024->256 from 16²', 'transposed', 16, 1024, 256, 2, (1, 1, 1)),
    ('G up 512->128 from 32²', 'transposed', 32, 512, 128, 2, (1, 1, 1)),
    ('G up 256->64 from 64²', 'transposed', 64, 256, 64, 2, (1, 1, 1)),
    ('G up 128->64 from 128²', 'transposed', 128, 128, 64, 2, (1, 1, 1)),
    ('D 3->64 from 256²', 'conv', 256, 3, 64, 2, (3, 1, 1)),
    ('D 64->128 from 128²', 'conv', 128, 64, 128, 2, (3, 2, 1)),
    ('D 128->256 from 64²', 'conv', 64, 128, 256, 2, (3, 2, 1)),
    ('D 256->512 at 32², stride 1', 'conv', 32, 256, 512, 1, (3, 2, 1)),
    ('D 512->1 at 31², stride 1', 'conv', 31, 512, 1, 1, (3, 2, 1))]


def time_step_convs(batch, repeats):
  """For each PIX2PIX_STEP conv: colorjax's and PyTorch's (forward, input gradient, weight
  gradient) median seconds, each gradient without the forward; PyTorch's None without it."""
  for name, kind, side, channels, features, stride, counts in PIX2PIX_STEP:
    if kind == 'conv':
      ours = convs.Conv(features, (4, 4), strides=(stride, stride), padding=((1, 1), (1, 1)),
                        use_bias=False)
    else:
      ours = convs.ConvTranspose2x(features)
    x = jax.random.normal(jax.random.PRNGKey(0), (batch, side, side, channels))
    jax_s = part_seconds(ours.apply, ours.init(jax.random.PRNGKey(1), x), x, repeats)
    yield name, counts, jax_s, _torch_parts(kind, batch, side, channels, features, stride,
                                            repeats)


def _torch_parts(kind, batch, side, channels, features, stride, repeats):
  try:
    import torch
  except ImportError:
    return None
  torch.set_num_threads(os.cpu_count())
  layer = (torch.nn.Conv2d(channels, features, 4, stride, 1, bias=False) if kind == 'conv'
           else torch.nn.ConvTranspose2d(channels, features, 4, 2, 1))
  x = torch.randn(batch, channels, side, side)
  dy = torch.randn_like(layer(x))

  def forward():
    with torch.no_grad():
      layer(x)

  def gradient(of_input):
    x.requires_grad_(of_input)
    for p in layer.parameters():
      p.requires_grad_(not of_input)
    wrt = [x] if of_input else list(layer.parameters())
    return lambda: torch.autograd.grad(layer(x), wrt, dy)
  forward_s = median_seconds(forward, repeats)
  return [forward_s] + [median_seconds(gradient(of_input), repeats) - forward_s
                        for of_input in (True, False)]


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--batch', type=int, default=1)
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--parts', action='store_true',
                      help="XLA's stride-2 convs part by part, next to PyTorch's fwd+bwd")
  parser.add_argument('--groups', action='store_true',
                      help='gradients over the whole batch against by image group')
  parser.add_argument('--step', action='store_true',
                      help="the pix2pix step's convs against PyTorch's, part by part")
  args = parser.parse_args()
  host_memory.keep_freed_memory()   # as the training entry points do, before JAX starts
  if args.step:
    print(f'{jax.devices()[0].device_kind}, batch {args.batch}, median of {args.repeats}; '
          'ms forward / input gradient / weight gradient, then the step\'s weighted sum')
    print('| conv | per step | colorjax | PyTorch | colorjax in the step | PyTorch in the step |'
          '\n|---|---|---:|---:|---:|---:|')
    totals = [0.0, 0.0]
    for name, counts, jax_s, torch_s in time_step_convs(args.batch, args.repeats):
      parts, in_step = [], []
      for side, times in enumerate((jax_s, torch_s)):
        weighted = sum(n * t for n, t in zip(counts, times)) if times else float('nan')
        totals[side] += weighted
        parts.append(' / '.join(f'{1e3 * t:.1f}' for t in times) if times else 'no PyTorch')
        in_step.append(f'{1e3 * weighted:.0f} ms')
      print(f"| {name} | {' / '.join(map(str, counts))} | {' | '.join(parts)} | "
            f"{' | '.join(in_step)} |", flush=True)
    print(f'| all | | | | {1e3 * totals[0]:.0f} ms | {1e3 * totals[1]:.0f} ms |')
    return
  if args.groups:
    print(f'{jax.devices()[0].device_kind}, batch {args.batch}, fwd+bwd median of {args.repeats}')
    print('| layer | whole batch | by image group | speed-up |\n|---|---:|---:|---:|')
    for name, whole_s, grouped_s in time_groups(args.batch, args.repeats):
      print(f'| {name} | {1e3 * whole_s:.0f} ms | {1e3 * grouped_s:.0f} ms | '
            f'{whole_s / grouped_s:.2f}× |', flush=True)
    return
  if args.parts:
    print(f'{jax.devices()[0].device_kind}, batch {args.batch}, median of {args.repeats}')
    print('| conv | XLA forward | XLA input gradient | XLA weight gradient | XLA total | '
          'PyTorch fwd+bwd |\n|---|---:|---:|---:|---:|---:|')
    for shape, features, kernel, stride in STRIDED:
      times, torch_s = time_parts(shape, features, kernel, stride, args.batch, args.repeats)
      cells = [f'{1e3 * t:.1f} ms' for t in (*times.values(), sum(times.values()))]
      torch_cell = f'{1e3 * torch_s:.1f} ms' if torch_s is not None else 'no PyTorch'
      print(f'| {kernel}x{kernel}/{stride} {shape[2]}->{features} at {shape[0]}² | '
            f"{' | '.join(cells)} | {torch_cell} |", flush=True)
    return
  print(f'{jax.devices()[0].device_kind}, batch {args.batch}, fwd+bwd median of {args.repeats}')
  print('| layer | Flax | colorjax | speed-up |\n|---|---:|---:|---:|')
  for name, shape, (ours, ours_input), (theirs, theirs_input) in _layers():
    x = jax.random.normal(jax.random.PRNGKey(1), (args.batch, *shape))
    flax_s = time_layer(theirs, theirs_input, x, args.repeats)
    ours_s = time_layer(ours, ours_input, x, args.repeats)
    print(f'| {name} | {1e3 * flax_s:.1f} ms | {1e3 * ours_s:.1f} ms | '
          f'{flax_s / ours_s:.1f}× |', flush=True)


if __name__ == '__main__':
  main()
