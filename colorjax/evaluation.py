"""A trained run measured on held-out images: colour metrics, the no-colour baseline, FID.

``evaluate`` runs a jitted eval step over the held-out images (training's periodic eval uses it
too); ``measure(run)`` returns a report; ``write(report, folder)`` saves it as JSON and a markdown
table. FID compares the pool features (2048-d) of one of the Inception networks FIDs are
published with (``load_fid``) for the predictions and for the originals, with the Fréchet
distance computed in float64. ΔCF is the gap between the mean colourfulness of the predictions
and that of the originals.
"""
import json
import os
import re
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from colorjax.core import color, parallel
from colorjax.models import inception
from colorjax.tasks.inputs import rgb_and_lab

METRICS = ('psnr', 'ssim', 'ab_error', 'delta_e', 'colourfulness')
HEADINGS = {'psnr': 'PSNR (dB) ↑', 'ssim': 'SSIM ↑', 'ab_error': 'ab error ↓',
            'delta_e': 'ΔE2000 ↓', 'colourfulness': 'colourfulness', 'delta_cf': 'ΔCF ↓',
            'fid': 'FID ↓'}


class Fid(NamedTuple):
  """An FID network ready to run: its key in inception.NETWORKS, its weight file, variables."""
  network: str
  weights: str
  variables: Any


def load_fid(network, path=None):
  """``network``'s Fid from ``path`` or, without one, from its project's download cache."""
  found = inception.find_weights(inception.NETWORKS[network], path)
  return Fid(network, os.path.abspath(found), inception.load_params(found, network))


def frechet_distance(features_a, features_b):
  """Fréchet distance between Gaussians fitted to two feature sets [N, D], in float64.

  tr sqrt(Σa Σb) is computed as tr sqrt(Σa^½ Σb Σa^½), a symmetric PSD matrix, so the square
  root is an eigendecomposition and never complex.
  """
  a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
  mean_a, mean_b = a.mean(0), b.mean(0)
  cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  values, vectors = np.linalg.eigh(cov_a)
  root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
  middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
  trace_root = np.sum(np.sqrt(np.clip(middle, 0, None)))
  return float(np.sum(np.square(mean_a - mean_b)) + np.trace(cov_a) + np.trace(cov_b)
               - 2 * trace_root)


class EvalResult(NamedTuple):
  metrics: dict    # the mean of every metric the eval step sums
  per_image: dict  # the valid images' per-image arrays, concatenated on the host
  first: Any       # the first (global) batch, for sample grids
  images: int      # valid images evaluated (all processes)
  skipped: str     # this process's skip summary ('0 of 12 images skipped from ...')


def evaluate(state, config, mesh, shard, eval_step, progress=False):
  """Runs ``eval_step(state, batch) -> (sums, per_image)`` over the held-out images; ``sums``
  counts images in 'count', ``per_image`` arrays are replicated and come with the batch's
  'mask'. ``progress``: a progress bar on process 0's stderr."""
  from colorjax.data import pipeline, sources
  totals, first, rows, skip_logs = None, None, [], []
  batches = pipeline.eval_batches(config, shard, skip_logs)
  if progress:
    total = pipeline.num_eval_batches(config, sources.open_source(config.data), shard)
    batches = tqdm.tqdm(batches, 'evaluating', total, unit='batch',
                        disable=jax.process_index() != 0)
  pending = {}  # the last batch's features, fetched once the next batch is dispatched
  for host_batch in batches:
    batch = parallel.global_batch(host_batch, mesh)
    first = batch if first is None else first
    sums, per_image = eval_step(state, batch)
    totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
    if pending:
      rows.append(jax.device_get(pending))
    pending = per_image
  if pending:
    rows.append(jax.device_get(pending))
  totals = jax.device_get(totals)
  images = int(totals.pop('count'))
  per_image = {name: np.concatenate([values[name][values['mask'].astype(bool)]
                                     for values in rows])
               for name in (rows[0] if rows else ()) if name != 'mask'}
  return EvalResult({name: float(value) / max(images, 1) for name, value in totals.items()},
                    per_image, first, images, skip_logs[0].summary())


def jitted_eval_step(task, mesh, fid=None):
  """(state, batch) -> (metric sums, per-image FID features of prediction, gray and original),
  jitted over the mesh; no features without ``fid`` (a Fid)."""
  replicated, sharded = parallel.replicated(mesh), parallel.sharded(mesh)

  def step(state, inception_variables, batch):
    sums = task.eval_step(state, batch)
    if fid is None:
      return sums, {}
    rgb, lab = rgb_and_lab(batch)
    L = color.split_lab(lab)[0]
    predicted = color.join_l_ab(L, task.predict(state, L))
    gray = color.join_l_ab(L, jnp.zeros_like(predicted[..., :2]))
    features = {name: inception.features(inception_variables, images, fid.network)
                for name, images in (('prediction', predicted), ('gray', gray),
                                     ('original', rgb))}
    return sums, {**features, 'mask': batch['mask']}

  jitted = jax.jit(step, in_shardings=(replicated, replicated, sharded),
                   out_shardings=replicated)
  variables = fid.variables if fid else None
  return lambda state, batch: jitted(state, variables, batch)


def measure(run, fid=None, progress=False):
  """The report of ``run`` (a runs.Run) on its config's held-out images; FID too when given a
  Fid (``load_fid``)."""
  mesh = parallel.make_mesh()
  result = evaluate(run.state, run.config, mesh, parallel.shard_of_data(),
                    jitted_eval_step(run.task, mesh, fid), progress)
  means, per_image = result.metrics, result.per_image
  rows = {'prediction': {m: means[m] for m in METRICS},
          'gray': {m: means[f'{m}_gray'] for m in METRICS},
          'original': {'colourfulness': means['colourfulness_original']}}
  for name in ('prediction', 'gray'):
    rows[name]['delta_cf'] = abs(rows[name]['colourfulness'] - means['colourfulness_original'])
  report = {'run': os.path.abspath(run.workdir), 'step': run.step,
            'data': run.config.data.source, 'image_size': run.config.image_size,
            'images': result.images, 'skipped': result.skipped, 'rows': rows}
  if per_image and result.images >= 2:
    for name in ('prediction', 'gray'):
      rows[name]['fid'] = frechet_distance(per_image[name], per_image['original'])
    network = inception.NETWORKS[fid.network]
    report['fid'] = {'network': fid.network, 'description': network.description,
                     'weights': fid.weights}
  return report


def table(rows):
  """[(label, {metric: value})] as markdown table lines, one column per metric of the first."""
  columns = [m for m in (*METRICS, 'delta_cf', 'fid') if m in rows[0][1]]
  lines = ['| | ' + ' | '.join(HEADINGS[c] for c in columns) + ' |',
           '|---|' + '---:|' * len(columns)]
  for label, row in rows:
    lines.append(f'| {label} | ' + ' | '.join(f'{row[c]:.4g}' if c in row else '–'
                                               for c in columns) + ' |')
  return lines


def markdown(report):
  """The report as a markdown table (rows: prediction, no colour, original)."""
  labels = {'prediction': 'prediction', 'gray': 'no colour (L only)', 'original': 'original'}
  lines = [f"Run `{report['run']}` at step {report['step']} on `{report['data']}`: "
           f"{report['images']} images as {report['image_size']}² centre crops; "
           f"{report['skipped']}.", '']
  lines += table([(label, report['rows'][name]) for name, label in labels.items()])
  if 'fid' in report:
    fid = report['fid']
    lines += ['', f"FID network: {fid['network']} ({fid['description']}), weights "
                  f"`{fid['weights']}`."]
  return '\n'.join(lines) + '\n'


def write(report, folder):
  """RUN/eval/step_N-SOURCE.json and .md (process 0); returns the JSON path."""
  stem = f"step_{report['step']}-{re.sub(r'[^A-Za-z0-9_.]+', '_', report['data']).strip('_')}"
  path = os.path.join(folder, stem)
  if jax.process_index() == 0:
    os.makedirs(folder, exist_ok=True)
    with open(path + '.json', 'w') as f:
      json.dump(report, f, indent=2)
    with open(path + '.md', 'w') as f:
      f.write(markdown(report))
  return path + '.json'
