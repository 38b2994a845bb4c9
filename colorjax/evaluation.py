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

from colorjax.core import color, files, metrics, parallel
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
  'mask'. ``progress``: a progress bar on process 0's stderr when it is a terminal."""
  from colorjax.data import pipeline, sources
  skip_logs = []
  batches = pipeline.eval_batches(config, shard, skip_logs)
  total = progress and pipeline.num_eval_batches(config, sources.open_source(config.data), shard)
  return run_batches(state, batches, mesh, eval_step, skip_logs, progress, total)


def _valid_rows(per_image):
  """A batch's per-image arrays on the host, padding rows (mask False) left out."""
  values = jax.device_get(per_image)
  mask = values.pop('mask').astype(bool)
  return values if mask.all() else {name: value[mask] for name, value in values.items()}


def run_batches(state, batches, mesh, eval_step, skip_logs, progress=False, total=None):
  """``evaluate``'s loop over any host batches (and the SkipLogs their pipeline fills)."""
  if progress:
    batches = tqdm.tqdm(batches, 'evaluating', total or None, unit='batch',  # on a terminal
                        disable=True if jax.process_index() else None)
  totals, first, rows = None, None, []
  pending = {}  # the last batch's per-image arrays, fetched once the next batch is dispatched
  for host_batch in batches:
    batch = parallel.global_batch(host_batch, mesh)
    first = batch if first is None else first
    sums, per_image = eval_step(state, batch)
    totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
    if pending:
      rows.append(_valid_rows(pending))
    pending = per_image
  if pending:
    rows.append(_valid_rows(pending))
  totals = jax.device_get(totals)
  images = int(totals.pop('count'))
  per_image = {name: np.concatenate([values[name] for values in rows])
               for name in (rows[0] if rows else ())}
  return EvalResult({name: float(value) / max(images, 1) for name, value in totals.items()},
                    per_image, first, images, '; '.join(log.summary() for log in skip_logs))


def _jit_over(mesh, step):
  """``step(state, variables, batch)`` jitted with the batch sharded over the mesh's data axis
  and everything else (and the results) replicated."""
  replicated = parallel.replicated(mesh)
  return jax.jit(step, in_shardings=(replicated, replicated, parallel.sharded(mesh)),
                 out_shardings=replicated)


def _predict_at(predict, resolution):
  """``predict`` run on L resized to resolution² (Lanczos, antialiased), its ab resized back to
  the input's size (bilinear), as colorize brings a network's output to a photo's size."""
  def at(state, L):
    n, h, w, _ = L.shape
    if (h, w) == (resolution, resolution):
      return predict(state, L)
    small = jax.image.resize(L, (n, resolution, resolution, 1), 'lanczos3', antialias=True)
    ab = predict(state, jnp.clip(small, 0.0, 100.0))
    return jax.image.resize(ab, (n, h, w, ab.shape[-1]), 'bilinear')
  return at


def jitted_eval_step(task, mesh, fid=None, resolution=None, fid_input=None,
                     absolute_colourfulness=False):
  """(state, batch) -> (metric sums, per-image arrays), jitted over the mesh.

  Per image: FID features of prediction, gray and original with ``fid`` (a Fid), each image
  mapped to the Inception input as x * scale + shift (``fid_input``: (scale, shift); default
  [-1, 1]); colourfulness of the three from |R - G| and |(R + G) / 2 - B| with
  ``absolute_colourfulness``. ``resolution``: the network colorizes L at resolution² (default:
  the batch's size).
  """
  predict = task.predict if resolution is None else _predict_at(task.predict, resolution)

  def step(state, inception_variables, batch):
    rgb, lab = rgb_and_lab(batch)
    L = color.split_lab(lab)[0]
    ab = None if resolution is None else predict(state, L)
    sums = (task.eval_step(state, batch) if ab is None
            else metrics.eval_sums(ab, lab, rgb, batch['mask']))
    if fid is None and not absolute_colourfulness:
      return sums, {}
    predicted = color.join_l_ab(L, predict(state, L) if ab is None else ab)
    images = {'prediction': predicted, 'original': rgb,
              'gray': color.join_l_ab(L, jnp.zeros_like(predicted[..., :2]))}
    per_image = {'mask': batch['mask']}
    if absolute_colourfulness:
      per_image.update({f'colourfulness_{name}': metrics.colourfulness(x, absolute=True)
                        for name, x in images.items()})
    if fid is not None:   # one network call for the three: one copy of it to compile
      features = inception.features(inception_variables, jnp.concatenate(list(images.values())),
                                    fid.network, *(fid_input or ()))
      per_image.update(zip(images, jnp.split(features, len(images))))
    return sums, per_image

  jitted = _jit_over(mesh, step)
  variables = fid.variables if fid else None
  return lambda state, batch: jitted(state, variables, batch)


def _rows(means, per_image=None):
  """The report's rows (prediction, gray, original), colourfulness from ``per_image`` when it
  holds it (a protocol's own formula), with ΔCF."""
  rows = {'prediction': {m: means[m] for m in METRICS},
          'gray': {m: means[f'{m}_gray'] for m in METRICS},
          'original': {'colourfulness': means['colourfulness_original']}}
  for name, row in rows.items():
    if per_image and f'colourfulness_{name}' in per_image:
      row['colourfulness'] = float(np.mean(per_image[f'colourfulness_{name}']))
  for name in ('prediction', 'gray'):
    rows[name]['delta_cf'] = abs(rows[name]['colourfulness'] - rows['original']['colourfulness'])
  return rows


def _fid_note(fid, fid_input=None):
  scale, shift = fid_input or inception.STANDARD_INPUT
  return {'network': fid.network, 'description': inception.NETWORKS[fid.network].description,
          'weights': fid.weights, 'input': {'scale': scale, 'shift': shift}}


def measure(run, fid=None, progress=False):
  """The report of ``run`` (a runs.Run) on its config's held-out images; FID too when given a
  Fid (``load_fid``)."""
  mesh = parallel.make_mesh()
  result = evaluate(run.state, run.config, mesh, parallel.shard_of_data(),
                    jitted_eval_step(run.task, mesh, fid), progress)
  rows = _rows(result.metrics)
  report = {'run': os.path.abspath(run.workdir), 'step': run.step,
            'data': run.config.data.source, 'image_size': run.config.image_size,
            'images': result.images, 'skipped': result.skipped, 'rows': rows}
  per_image = result.per_image
  if per_image and result.images >= 2:
    for name in ('prediction', 'gray'):
      rows[name]['fid'] = frechet_distance(per_image[name], per_image['original'])
    report['fid'] = _fid_note(fid)
  return report


def _reference_features(protocol, fid, mesh, shard, batch_size, data_dir, file_list, threads,
                        skip_logs):
  """FID features of a protocol's disjoint reference images, data-parallel."""
  from colorjax.data import protocols

  def step(unused, variables, batch):
    features = inception.features(variables, batch['rgb'], fid.network,
                                  *(protocol.fid_input or ()))
    return {'count': jnp.sum(batch['mask'])}, {'reference': features, 'mask': batch['mask']}

  jitted = _jit_over(mesh, step)
  batches = protocols.batches(protocol, data_dir, file_list, shard, batch_size, skip_logs,
                              reference=True, threads=threads)
  result = run_batches(None, batches, mesh, lambda _, batch: jitted(None, fid.variables, batch),
                       [])
  return result.per_image.get('reference', np.zeros((0, inception.FEATURES)))


def measure_protocol(run, protocol, fid=None, data_dir='', file_list=None, resolution=None,
                     progress=False):
  """The report of ``run`` under an evaluation protocol (a data.protocols.Protocol): its images
  colorized at ``resolution``² (default: the run's image_size) and brought back to the
  protocol's size, its colourfulness, and FID with ``fid`` against its reference set."""
  from colorjax.data import pipeline, protocols
  config = run.config
  mesh, shard = parallel.make_mesh(), parallel.shard_of_data()
  batch_size = pipeline.per_process_batch(config, shard)
  resolution = resolution or config.image_size
  step = jitted_eval_step(run.task, mesh, fid, resolution, protocol.fid_input,
                          protocol.colourfulness == 'absolute')
  skip_logs = []
  batches = protocols.batches(protocol, data_dir, file_list, shard, batch_size, skip_logs,
                              lab=config.data.color_space == 'lab', threads=config.data.threads)
  total = -(-protocols.images_per_process(protocol, parallel.Shard(0, shard.count))
            // batch_size)
  result = run_batches(run.state, batches, mesh, step, skip_logs, progress, total)
  per_image = result.per_image
  rows = _rows(result.metrics, per_image)
  report = {'run': os.path.abspath(run.workdir), 'step': run.step,
            'protocol': {'name': protocol.name, 'citation': protocol.citation,
                         'file_list': file_list and os.path.abspath(file_list)},
            'data': protocols.SOURCE, 'image_size': protocol.image_size,
            'resolution': resolution, 'images': result.images, 'expected': protocol.count,
            'skipped': result.skipped, 'rows': rows}
  if fid is not None and result.images >= 2:
    if protocol.reference:
      reference = _reference_features(protocol, fid, mesh, shard, batch_size, data_dir,
                                      file_list, config.data.threads, skip_logs)
      report['skipped'] = '; '.join(log.summary() for log in skip_logs)
      names = ('prediction', 'gray', 'original')
    else:
      reference, names = per_image['original'], ('prediction', 'gray')
    if len(reference) >= 2:
      for name in names:
        rows[name]['fid'] = frechet_distance(per_image[name], reference)
      report['fid'] = {**_fid_note(fid, protocol.fid_input), 'reference_images': len(reference)}
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
  if 'protocol' in report:
    protocol = report['protocol']
    lines = [f"Run `{report['run']}` at step {report['step']} under protocol "
             f"`{protocol['name']}` ({protocol['citation']}): {report['images']} of its "
             f"{report['expected']} images of `{report['data']}` at {report['image_size']}², "
             f"colorized at {report['resolution']}²; {report['skipped']}."]
    if report['images'] != report['expected']:
      lines.append(f"Not comparable with published figures: {report['images']} of the "
                   f"protocol's {report['expected']} images were evaluated.")
    lines.append('')
  else:
    lines = [f"Run `{report['run']}` at step {report['step']} on `{report['data']}`: "
             f"{report['images']} images as {report['image_size']}² centre crops; "
             f"{report['skipped']}.", '']
  lines += table([(label, report['rows'][name]) for name, label in labels.items()])
  if 'fid' in report:
    fid = report['fid']
    against = (f"against {fid['reference_images']} reference images"
               if 'reference_images' in fid else 'against the originals')
    lines += ['', f"FID {against}, network {fid['network']} ({fid['description']}), weights "
                  f"`{fid['weights']}`, input RGB in [0, 1] times {fid['input']['scale']} plus "
                  f"{fid['input']['shift']}."]
  return '\n'.join(lines) + '\n'


def write(report, folder):
  """RUN/eval/step_N-SOURCE.json and .md (process 0); returns the JSON path."""
  data = (f"protocol_{report['protocol']['name']}" if 'protocol' in report
          else re.sub(r'[^A-Za-z0-9_.]+', '_', report['data']).strip('_'))
  stem = f"step_{report['step']}-{data}"
  path = os.path.join(folder, stem)
  if jax.process_index() == 0:
    os.makedirs(folder, exist_ok=True)
    files.write_whole(path + '.json', json.dumps(report, indent=2))
    files.write_whole(path + '.md', markdown(report))
  return path + '.json'
