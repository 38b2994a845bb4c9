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

from colorjax.core.validation import UserError

FORMAT = 'colorjax-exported/1'
PLATFORMS = ('cpu', 'cuda', 'tpu')


def _predict_state(state):
  """What predict reads of a TrainState: the optimiser state and a task's extra arrays stay
  behind."""
  return state.replace(opt_state=None, extra=None)


def export_predict(task, state, resolution, platforms=PLATFORMS):
  """``task.predict(state, L)`` at ``resolution`` and any batch size as a
  ``jax.export.Exported`` for each of ``platforms``, taking ``_predict_state(state)``'s leaves
  as a list (``state`` may hold arrays or ``jax.ShapeDtypeStruct``s)."""
  leaves, treedef = jax.tree.flatten(_predict_state(state))

  def predict(flat_weights, L):
    return task.predict(jax.tree.unflatten(treedef, flat_weights), L)

  shape = jax.export.symbolic_shape(f'b, {resolution}, {resolution}, 1')
  return jax.export.export(jax.jit(predict), platforms=tuple(platforms))(
      [jax.ShapeDtypeStruct(w.shape, w.dtype) for w in leaves],
      jax.ShapeDtypeStruct(shape, jnp.float32))


def save(path, run, resolution, platforms=PLATFORMS):
  """Writes ``run`` (a runs.Run) as an exported colorizer at ``resolution`` to ``path``."""
  exported = export_predict(run.task, run.state, resolution, platforms)
  weights = [np.asarray(jax.device_get(w)) for w in jax.tree.leaves(_predict_state(run.state))]
  meta = {'format': FORMAT, 'task': run.config.task, 'resolution': resolution,
          'platforms': list(platforms), 'step': run.step, 'jax': jax.__version__}
  buffer = io.BytesIO()
  np.savez(buffer, *weights)
  with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as archive:
    archive.writestr('meta.json', json.dumps(meta, indent=2))
    archive.writestr('predict', exported.serialize())
    archive.writestr('weights.npz', buffer.getvalue())
  return meta


class Exported:
  """An exported colorizer: ``exported(L)`` maps L [b, R, R, 1] (Lab units) to ab."""

  def __init__(self, path):
    try:
      with zipfile.ZipFile(path) as archive:
        self.meta = json.loads(archive.read('meta.json'))
        predict = archive.read('predict')
        with np.load(io.BytesIO(archive.read('weights.npz')), allow_pickle=False) as weights:
          self.weights = [jnp.asarray(weights[f'arr_{i}']) for i in range(len(weights.files))]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
      raise UserError(f'{path} is not a colorjax exported model ({e}).') from None
    if self.meta.get('format') != FORMAT:
      raise UserError(f'{path} is a {self.meta.get("format")!r} file; this colorjax reads '
                      f'{FORMAT!r}.')
    self.exported = jax.export.deserialize(bytearray(predict))
    self.resolution = self.meta['resolution']
    self._call = jax.jit(self.exported.call)

  def __call__(self, L):
    return self._call(self.weights, L)
