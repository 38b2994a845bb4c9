"""``colorjax compare``: trained runs side by side on the same held-out images.

  colorjax compare --workdir=runs/compare/regression --workdir=runs/compare/classification \
      --output=docs/compare_grid.png

Prints one markdown table with each run's PSNR, SSIM, ab error, CIEDE2000 and colourfulness (as
``colorjax evaluate`` measures them), the no-colour baseline and the originals' colourfulness,
and writes a grid of held-out crops: gray input | each run's colours | original. The runs must
hold out the same images (same data source, image size, held-out share and seed).
"""
import os

import jax
import numpy as np
from absl import flags

from colorjax import evaluation
from colorjax.core import color, validation, visualize
from colorjax.training import runs

FLAGS = flags.FlagValues()  # this command's own flags (colorjax SUB --help lists them)

_WORKDIRS = flags.DEFINE_multi_string('workdir', None, 'A trained run (give two or more).',
                                      flag_values=FLAGS)
_OUTPUT = flags.DEFINE_string('output', None, 'PNG file for the side-by-side grid.',
                              flag_values=FLAGS)
_ROWS = flags.DEFINE_integer('rows', 8, 'Held-out crops in the grid (at most one batch).',
                             flag_values=FLAGS)
_ZOOM = flags.DEFINE_integer('zoom', 1, 'Enlarge the grid this many times (nearest neighbour).',
                             flag_values=FLAGS)

SAME_IMAGES = ('data.source', 'image_size', 'data.eval_fraction', 'seed')


def check_same_images(loaded):
  """One sentence when two runs do not hold out the same images."""
  for field in SAME_IMAGES:
    values = [validation.get_field(run.config, field) for run in loaded]
    if len(set(map(repr, values))) > 1:
      raise validation.UserError(f'the runs hold out different images: config.{field} is '
                                 f'{", ".join(map(repr, values))}; compare runs of the same data.')


def run_name(run):
  return os.path.basename(os.path.normpath(run.workdir))


def sample_grid(loaded, rows, zoom):
  """uint8 grid, one row per held-out crop of the first eval batch: gray | each run | original,
  under a header naming the columns."""
  from colorjax.data import pipeline  # imports TensorFlow
  batch = next(pipeline.eval_batches(loaded[0].config))
  rgb = color.uint8_to_unit(batch['rgb'][batch['mask']][:rows], dtype=np.float32, xp=np)
  L = color.rgb_to_lab(rgb, xp=np)[..., :1]
  columns = [color.join_l_ab(L, np.zeros(L.shape[:-1] + (2,), np.float32), xp=np)]
  for run in loaded:
    ab = np.asarray(jax.jit(run.task.predict)(run.state, L))
    columns.append(color.join_l_ab(L, ab, xp=np))
  columns.append(rgb)
  zoomed = [[np.repeat(np.repeat(image, zoom, 0), zoom, 1) for image in images]
            for images in zip(*columns)]
  return visualize.grid(zoomed, labels=['gray input'] + [run_name(r) for r in loaded]
                        + ['original'])


def main(argv):
  workdirs = _WORKDIRS.value or []
  if len(argv) > 1 or len(workdirs) < 2 or not _OUTPUT.value:
    raise validation.UserError('give two or more --workdir=RUN and --output=GRID.png.')
  loaded = [runs.load(workdir) for workdir in workdirs]
  check_same_images(loaded)
  reports = [evaluation.measure(run) for run in loaded]
  first = reports[0]
  rows = [(f'{run_name(run)} ({run.config.task}, step {run.step})', report['rows']['prediction']) for run, report in zip(loaded, reports)]
  rows += [('no colour (L only)', first['rows']['gray']),
           ('original', first['rows']['original'])]
  print(f"Held-out images of `{first['data']}`: {first['images']} {first['image_size']}² centre "
        f"crops; {first['skipped']}.\n")
  print('\n'.join(evaluation.table(rows)))
  visualize.save_png(_OUTPUT.value, sample_grid(loaded, _ROWS.value, _ZOOM.value))
  print(f'\nWrote {_OUTPUT.value}: gray input | {" | ".join(workdirs)} | original.')
