"""A trained run's predict as an ONNX file (see ``onnx_model`` for what the file holds).

The conversion is jax2onnx's, from the jaxpr of the run's predict traced here with a symbolic
batch dimension under ``convs.plain_ops()`` (so the program holds XLA's plain convolutions, no
platform choice). The jaxpr is handed to jax2onnx as it is, so its patches of jnp and Flax
functions (which do not take a symbolic batch everywhere) never apply; the only op rewritten
for ONNX is the 2x2 max pool (``_max_pool_as_reshape``). Scanned layers (the ResNet's residual
blocks) become one ONNX ``Loop``.

ONNX Runtime's CPU kernels have no bfloat16 convolutions, so a run trained with
``compute_dtype='bfloat16'`` is exported computing in float32 (its weights are float32).
"""
import contextlib
import json
import logging

import jax
import jax.numpy as jnp
from jax.extend import core

from colorjax.core import color, files
from colorjax.core.validation import UserError
from colorjax.inference import onnx_model
from colorjax.models import convs
from colorjax.training import runs

# Opset 17: ONNX Runtime 1.13 (2022) and later, onnxruntime-web and the mobile builds run it.
OPSET = 17


def _jax2onnx():
  try:
    with _quiet():
      import jax2onnx  # noqa: PLC0415  (optional: see docs/export.md)
  except ImportError:
    raise UserError('ONNX export needs jax2onnx and the onnx extra: pip install '
                    "'colorjax[onnx]' && pip install --no-deps jax2onnx (see docs/export.md).") \
        from None
  return jax2onnx


@contextlib.contextmanager
def _quiet():
  """jax2onnx logs a traceback for each optional plugin whose library (Equinox) is absent, and
  onnx_ir a line for each shape tensor it leaves untyped."""
  loggers = [logging.getLogger(name) for name in ('jax2onnx', 'onnx_ir')]
  levels = [logger.level for logger in loggers]
  for logger in loggers:
    logger.setLevel(logging.CRITICAL)
  try:
    yield
  finally:
    for logger, level in zip(loggers, levels):
      logger.setLevel(level)


def _max_pool_as_reshape(x, window_dimensions, window_strides, padding, base_dilation,
                         window_dilation):
  """``reduce_window_max`` over non-overlapping k x k windows of NHWC (``nn.max_pool(x, (k, k),
  strides=(k, k))``) as a reshape and a max: the same values, in ops ONNX Runtime runs (jax2onnx
  emits a four-dimensional MaxPool for it, which ONNX Runtime refuses)."""
  _, kh, kw, _ = window_dimensions
  batch, height, width, channels = x.shape
  if (tuple(window_dimensions) != (1, kh, kw, 1) or tuple(window_strides) != (1, kh, kw, 1)
      or any(p != (0, 0) for p in map(tuple, padding)) or height % kh or width % kw
      or set(base_dilation) | set(window_dilation) != {1}):
    raise NotImplementedError(f'ONNX export takes max pools over non-overlapping windows only, '
                              f'not window {window_dimensions} stride {window_strides}.')
  windows = x.reshape(batch, height // kh, kh, width // kw, kw, channels)
  return windows.max(axis=(2, 4))


_REWRITES = {'reduce_window_max': _max_pool_as_reshape}
_INLINED = ('pjit', 'jit', 'closed_call')


def _evaluate(jaxpr, consts, *args):
  """``jax.core.eval_jaxpr`` with ``_REWRITES`` applied, nested jit calls inlined (so their
  ops are rewritten too)."""
  env = {}

  def read(var):
    return var.val if isinstance(var, core.Literal) else env[var]

  env.update(zip(jaxpr.constvars, consts))
  env.update(zip(jaxpr.invars, args))
  for eqn in jaxpr.eqns:
    ins = [read(v) for v in eqn.invars]
    name = eqn.primitive.name
    if name in _REWRITES:
      outs = [_REWRITES[name](*ins, **eqn.params)]
    elif name in _INLINED:
      inner = eqn.params['jaxpr'] if 'jaxpr' in eqn.params else eqn.params['call_jaxpr']
      outs = _evaluate(inner.jaxpr, inner.consts, *ins)
    else:
      outs = eqn.primitive.bind(*ins, **eqn.primitive.get_bind_params(eqn.params))
      outs = outs if eqn.primitive.multiple_results else [outs]
    env.update(zip(eqn.outvars, outs))
  return [read(v) for v in jaxpr.outvars]


def graph_function(task, state, graph):
  """The function the ``graph`` ('lab' or 'rgb') computes with ``state``'s weights."""
  weights = state.for_predict()
  if graph == 'lab':
    return lambda L: task.predict(weights, L)

  def rgb_to_rgb(rgb):
    L = color.rgb_to_lab(color.uint8_to_unit(rgb))[..., :1]
    return color.unit_to_uint8(color.join_l_ab(L, task.predict(weights, L)))
  return rgb_to_rgb


def convert(function, resolution, graph, name):
  """``function`` on a [batch, R, R, C] input as an ONNX ``ModelProto`` (jax2onnx)."""
  (input_name, dtype, channels), (output_name, _, _) = onnx_model.GRAPHS[graph]
  shape = jax.export.symbolic_shape(f'{onnx_model.BATCH}, {resolution}, {resolution}, {channels}')
  spec = jax.ShapeDtypeStruct(shape, jnp.dtype(dtype))
  with convs.plain_ops():
    traced = jax.make_jaxpr(function)(spec)
  jax2onnx = _jax2onnx()
  with _quiet():
    return jax2onnx.to_onnx(lambda x: _evaluate(traced.jaxpr, traced.consts, x)[0], [spec],
                            model_name=name, opset=OPSET, input_names=[input_name],
                            output_names=[output_name])


def model_bytes(run, resolution, graph):
  """``run`` (a runs.Run computing in float32) as a serialised ONNX model with its metadata."""
  if graph not in onnx_model.GRAPHS:
    raise UserError(f'--graph={graph} is not allowed; use one of {", ".join(onnx_model.GRAPHS)}.')
  model = convert(graph_function(run.task, run.state, graph), resolution, graph,
                  f'colorjax_{run.config.task}_{graph}')
  (input_name, dtype, channels), (output_name, out_dtype, out_channels) = \
      onnx_model.GRAPHS[graph]
  meta = {'format': onnx_model.FORMAT, 'task': run.config.task, 'graph': graph,
          'resolution': str(resolution), 'step': str(run.step), 'opset': str(OPSET),
          'input': f'{input_name} {dtype} [{onnx_model.BATCH}, {resolution}, {resolution}, '
                   f'{channels}]',
          'output': f'{output_name} {out_dtype} [{onnx_model.BATCH}, {resolution}, '
                    f'{resolution}, {out_channels}]',
          'jax': jax.__version__}
  del model.metadata_props[:]
  for key, value in meta.items():
    model.metadata_props.add(key=key, value=value)
  model.doc_string = ('A colorjax colorizer. Metadata: '
                      + json.dumps(meta, separators=(', ', ': ')))
  model.producer_name = 'colorjax'
  return model.SerializeToString(), meta


def save(path, run, resolution, graph='lab'):
  """Writes ``run`` (a runs.Run; bfloat16 runs compute in float32) as an ONNX colorizer at
  ``resolution`` to ``path`` (whole or not at all); returns its metadata."""
  data, meta = model_bytes(runs.computing_in(run, 'float32'), resolution, graph)
  files.write_whole(path, data)
  return meta
