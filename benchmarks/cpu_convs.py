"""Each conv formulation in colorjax/models/convs.py against the plain Flax layer it replaces:
jitted forward + backward (input and params) of one layer, median of ``--repeats`` runs.

  python -m benchmarks.cpu_convs
  python -m benchmarks.cpu_convs --batch=8 --repeats=7

The shapes are the ones that dominate the U-Net-256 and CycleGAN steps at 256², and VGG16's
deepest convs.
"""
import argparse
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp

from colorjax.models import convs


def _layers():
  """(name, input [H, W, C], colorjax's module and input map, Flax's)."""
  def reflected(features, kernel):
    pad = kernel // 2
    ours = convs.ReflectPaddedConv(features, (kernel, kernel), padding=((pad, pad), (pad, pad)))
    theirs = nn.Conv(features, (kernel, kernel), padding='VALID')
    return (ours, lambda x: x), (theirs, lambda x: convs.reflect_pad(x, pad))

  def head(features, kernel, padding):
    ours = convs.Conv(features, (kernel, kernel), padding=padding)
    return (ours, lambda x: x), (nn.Conv(features, (kernel, kernel), padding=padding),
                                 lambda x: x)

  def wide(features):
    return ((convs.Conv(features, (3, 3)), lambda x: x),
            (nn.Conv(features, (3, 3)), lambda x: x))

  def transposed(features):
    theirs = nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding='SAME')
    return (convs.ConvTranspose2x(features), lambda x: x), (theirs, lambda x: x)

  return [('transposed 4x4/2 128->64 at 128²', (128, 128, 128), *transposed(64)),
          ('transposed 4x4/2 1024->256 at 16²', (16, 16, 1024), *transposed(256)),
          ('output head 7x7 64->2 at 256², SAME', (256, 256, 64), *head(2, 7, 'SAME')),
          ('reflection output head 7x7 64->2 at 256²', (256, 256, 64), *reflected(2, 7)),
          ('Winograd 3x3 256->256 at 64²', (64, 64, 256), *wide(256)),
          ('Winograd 3x3 512->512 at 32²', (32, 32, 512), *wide(512)),
          ('reflection (Winograd) 3x3 256->256 at 64²', (64, 64, 256), *reflected(256, 3)),
          ('reflection 7x7 3->64 at 256²', (256, 256, 3), *reflected(64, 7))]


def time_layer(module, prepare, x, repeats):
  """Median seconds of one jitted forward + backward of ``module`` on ``prepare(x)``."""
  params = module.init(jax.random.PRNGKey(0), prepare(x))
  grad = jax.jit(jax.grad(lambda p, x: jnp.sum(module.apply(p, prepare(x)) ** 2),
                          argnums=(0, 1)))
  jax.block_until_ready(grad(params, x))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(grad(params, x))
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--batch', type=int, default=1)
  parser.add_argument('--repeats', type=int, default=5)
  args = parser.parse_args()
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
