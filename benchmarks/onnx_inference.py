"""Inference speed on this machine: a run's network in colorjax (jitted, as ``colorize
--workdir`` runs it), in its ``jax.export`` file and in its ONNX file through ONNX Runtime, on
the same images.

  python -m benchmarks.onnx_inference --workdir=runs/demo
  python -m benchmarks.onnx_inference --config=cyclegan --resolution=256 --batch=4

``--config=NAME[:VARIANT]`` (configs/NAME.py) times that network with random weights (speed
does not depend on them). For each route: the seconds from the run to its first result (jit's
trace and compile; the file's export, load and compile; the ONNX conversion, load and first
run; JAX's persistent compilation cache serves what it holds), the median
seconds per batch of ``--batch`` network inputs over ``--repeats`` calls and its images/sec,
and the median seconds to colorize the six bundled sample photos at their own sizes
(``Colorizer.colorize``: the same resizing and colour maths on every route). Prints a Markdown
table with each route's speed relative to colorjax's.
"""
import argparse
import importlib
import tempfile
import time

import jax
import numpy as np
from PIL import Image

from benchmarks.cpu_convs import median_seconds
from colorjax import tasks
from colorjax.data import sources
from colorjax.inference import Colorizer, artifact, onnx_export
from colorjax.inference.colorizer import network_input
from colorjax.training import experiment, runs


def random_run(name):
  """configs/NAME.py[:VARIANT]'s network with random weights, as a runs.Run."""
  file, _, variant = name.partition(':')
  module = importlib.import_module(f'configs.{file}')
  config = module.get_config(variant) if variant else module.get_config()
  experiment.validate(config)
  config = experiment.frozen(config)
  task = tasks.get(config.task)
  shape = (config.image_size, config.image_size)
  state = jax.jit(lambda rng: task.init(rng, config, shape))(jax.random.PRNGKey(0))
  return runs.Run(task=task, state=state, config=config, workdir=f'configs/{name}', step=0)


def routes(run, resolution, folder):
  """{route: (predict, seconds to load it)}: L [B, R, R, 1] -> ab as numpy."""
  start = time.perf_counter()
  jitted = jax.jit(run.task.predict)
  yield 'colorjax (jit)', lambda L: np.asarray(jitted(run.state, L)), start
  start = time.perf_counter()
  artifact.save(f'{folder}/model.cjx', run, resolution)
  exported = artifact.Exported(f'{folder}/model.cjx')
  yield 'jax.export file', lambda L: np.asarray(exported(L)), start
  start = time.perf_counter()
  onnx_export.save(f'{folder}/model.onnx', run, resolution)
  model = Colorizer.from_exported(f'{folder}/model.onnx').predict
  yield 'ONNX Runtime', model, start


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument('--workdir', help='a trained run (its latest checkpoint)')
  source.add_argument('--config', help='NAME[:VARIANT] of configs/, with random weights')
  parser.add_argument('--resolution', type=int, help="network resolution (the run's crop size)")
  parser.add_argument('--batch', type=int, default=8)
  parser.add_argument('--repeats', type=int, default=20)
  args = parser.parse_args()
  run = runs.load(args.workdir) if args.workdir else random_run(args.config)
  resolution = args.resolution or run.config.image_size
  runs.check_resolution(run, resolution)
  photos = [np.asarray(Image.open(f'{sources.samples_dir()}/{name}').convert('RGB'))
            for name in sources.SAMPLE_PHOTOS]
  L = np.stack([network_input(photos[i % len(photos)], resolution)[0]
                for i in range(args.batch)])
  rows = []
  with tempfile.TemporaryDirectory() as folder:
    for name, predict, start in routes(run, resolution, folder):
      predict(L)   # the first call compiles (JAX) or plans (ONNX Runtime)
      load = time.perf_counter() - start
      per_batch = median_seconds(lambda: predict(L), args.repeats)
      colorizer = Colorizer(predict, resolution, batch_size=args.batch)
      photos_seconds = median_seconds(lambda: colorizer.colorize(photos), max(3, args.repeats // 4))
      rows.append((name, load, per_batch, photos_seconds))
  print(f'{run.workdir} ({run.config.task}, {run.config.compute_dtype}) at {resolution}², '
        f'batch {args.batch}, median of {args.repeats}; JAX {jax.__version__} on '
        f'{jax.devices()[0].device_kind}\n')
  print('| route | to first result (s) | s / batch | images/s | vs colorjax | '
        f'{len(photos)} sample photos (s) |\n|---|---:|---:|---:|---:|---:|')
  for name, load, per_batch, photos_seconds in rows:
    print(f'| {name} | {load:.1f} | {per_batch:.4f} | {args.batch / per_batch:.1f} | '
          f'{rows[0][2] / per_batch:.2f}× | {photos_seconds:.2f} |')


if __name__ == '__main__':
  main()
