"""A trained colorizer in one self-contained file, for ``colorize --exported`` and for serving.

The file is a zip archive holding:
  meta.json   format version, task, network resolution, lowering platforms, versions
  predict     the ``jax.export`` serialisation of predict(weights, L[b, R, R, 1]) -> ab[b, R, R, 2]
              (Lab units; the batch size b is symbolic)
  weights.npz the weights in the function's argument order (plain arrays, loaded without pickle)
Loading it needs neither the training config nor the model code, only JAX.
"""
import io
import json
import zipfile

import jax
import jax.numpy as jnp
import numpy as np

from colorjax.core import files, validation
from colorjax.core.validation import UserError

FORMAT = 'colorjax-exported/1'
PLATFORMS = ('cpu', 'cuda', 'tpu')


def export_predict(task, state, resolution, platforms=PLATFORMS):
  """``task.predict(state, L)`` at ``resolution`` and any batch size as a
  ``jax.export.Exported`` for each of ``platforms``, taking ``state.for_predict()``'s leaves
  as a list (``state`` may hold arrays or ``jax.ShapeDtypeStruct``s)."""
  leaves, treedef = jax.tree.flatten(state.for_predict())

  def predict(flat_weights, L):
    return task.predict(jax.tree.unflatten(treedef, flat_weights), L)

  shape = jax.export.symbolic_shape(f'b, {resolution}, {resolution}, 1')
  return jax.export.export(jax.jit(predict), platforms=tuple(platforms))(
      [jax.ShapeDtypeStruct(w.shape, w.dtype) for w in leaves],
      jax.ShapeDtypeStruct(shape, jnp.float32))


def save(path, run, resolution, platforms=PLATFORMS):
  """Writes ``run`` (a runs.Run) as an exported colorizer at ``resolution`` to ``path`` (whole
  or not at all)."""
  exported = export_predict(run.task, run.state, resolution, platforms)
  weights = [np.asarray(jax.device_get(w)) for w in jax.tree.leaves(run.state.for_predict())]
  meta = {'format': FORMAT, 'task': run.config.task, 'resolution': resolution,
          'platforms': list(platforms), 'step': run.step, 'jax': jax.__version__}
  buffer, archive_buffer = io.BytesIO(), io.BytesIO()
  np.savez(buffer, *weights)
  with zipfile.ZipFile(archive_buffer, 'w', zipfile.ZIP_DEFLATED) as archive:
    archive.writestr('meta.json', json.dumps(meta, indent=2))
    archive.writestr('predict', exported.serialize())
    archive.writestr('weights.npz', buffer.getvalue())
  files.write_whole(path, archive_buffer.getvalue())
  return meta


class Exported:
  """An exported colorizer: ``exported(L)`` maps L [b, R, R, 1] (Lab units) to ab.

  Everything read is checked before use (the metadata, the compiled function, the weights
  against the function's arguments), each problem in one sentence."""

  def __init__(self, path):
    def damaged(what):
      return UserError(f'{path} is not a usable colorjax exported model: {what}.')
    try:
      with zipfile.ZipFile(path) as archive:
        meta = json.loads(archive.read('meta.json'))
        predict = archive.read('predict')
        with np.load(io.BytesIO(archive.read('weights.npz')), allow_pickle=False) as weights:
          self.weights = [jnp.asarray(weights[f'arr_{i}']) for i in range(len(weights.files))]
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:
      raise damaged(f'{type(e).__name__}: {e}') from None
    if not isinstance(meta, dict) or meta.get('format') != FORMAT:
      found = meta.get('format') if isinstance(meta, dict) else meta
      raise UserError(f'{path} is a {found!r} file; this colorjax reads {FORMAT!r}.')
    resolution = meta.get('resolution')
    if not isinstance(resolution, int) or not 1 <= resolution <= validation.MAX_RESOLUTION:
      raise damaged(f'its resolution {resolution!r} is not an integer in [1, {validation.MAX_RESOLUTION}]')
    try:
      self.exported = jax.export.deserialize(bytearray(predict))
    except Exception as e:  # noqa: BLE001  (the deserialiser raises many types for bad bytes)
      raise damaged(f'its compiled function does not load ({type(e).__name__})') from None
    expected = [(tuple(w.shape), w.dtype) for w in self.weights]
    avals = self.exported.in_avals
    if [(tuple(a.shape), a.dtype) for a in avals[:-1]] != expected:
      raise damaged(f'its {len(self.weights)} weight arrays do not fit the function, which takes '
                    f'{len(avals) - 1}')
    if tuple(avals[-1].shape[1:]) != (resolution, resolution, 1):
      raise damaged(f'its function takes L of shape {avals[-1].shape}, not at resolution '
                    f'{resolution}')
    self.meta, self.resolution = meta, resolution
    self._call = jax.jit(self.exported.call)

  def __call__(self, L):
    return self._call(self.weights, L)
