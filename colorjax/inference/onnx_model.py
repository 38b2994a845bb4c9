"""A colorizer in an ONNX file (``colorjax export --format=onnx``), run by ONNX Runtime.

The file holds one graph at a fixed network resolution R with a dynamic batch dimension
``batch``, and its weights; ``metadata_props`` says what it is (``FORMAT``, task, graph,
resolution, step, opset). Two graphs:
  lab  L float32 [batch, R, R, 1] (Lab units, 0..100) -> ab float32 [batch, R, R, 2] (Lab units):
       the run's predict, for ``colorize --exported`` (which keeps each photo's own L)
  rgb  rgb uint8 [batch, R, R, 3] -> colorized uint8 [batch, R, R, 3]: the colour maths in the
       graph too, for users with none of their own
Running it needs ``onnxruntime`` (the ``onnx`` extra) and numpy, not JAX.
"""
import numpy as np

from colorjax.core.validation import UserError

FORMAT = 'colorjax-onnx/1'
# graph: (input name, dtype, channels), (output name, dtype, channels)
GRAPHS = {'lab': (('L', 'float32', 1), ('ab', 'float32', 2)),
          'rgb': (('rgb', 'uint8', 3), ('colorized', 'uint8', 3))}
BATCH = 'batch'
_ONNX_TYPES = {'float32': 'tensor(float)', 'uint8': 'tensor(uint8)'}


def _runtime():
  try:
    import onnxruntime  # noqa: PLC0415  (optional: the onnx extra)
  except ImportError:
    raise UserError("running an ONNX model needs ONNX Runtime: pip install 'colorjax[onnx]'.") \
        from None
  return onnxruntime


def _describe(arg):
  return f'{arg.name!r} {arg.type} {list(arg.shape)}'


class OnnxModel:
  """An exported ONNX colorizer: ``model(x)`` runs its graph on a numpy batch.

  ``graph`` is 'lab' or 'rgb' (see the module docstring), ``resolution`` its R. The file is
  checked before use: that ONNX Runtime loads it, and that its one input and output are a
  colorizer's at one square resolution, each problem in one sentence."""

  def __init__(self, path, threads=0):
    ort = _runtime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3   # ONNX Runtime's own warnings are not the user's concern
    try:
      self.session = ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])
    except Exception as e:  # noqa: BLE001  (ONNX Runtime raises its own types for bad files)
      reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
      raise UserError(f'{path} is not a usable ONNX model ({reason}).') from None
    self.meta = dict(self.session.get_modelmeta().custom_metadata_map)
    inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
    self.graph = self._graph(path, inputs, outputs)
    self.resolution = inputs[0].shape[1]
    self.input_name, self.output_name = inputs[0].name, outputs[0].name

  def _graph(self, path, inputs, outputs):
    """The graph ('lab' or 'rgb') whose input and output ``inputs``/``outputs`` are."""
    found = (f'it takes {", ".join(map(_describe, inputs))} and returns '
             f'{", ".join(map(_describe, outputs))}')
    if len(inputs) == 1 and len(outputs) == 1:
      for graph, ((name, dtype, channels), (out, out_dtype, out_channels)) in GRAPHS.items():
        shape, out_shape = inputs[0].shape, outputs[0].shape
        if (inputs[0].type, outputs[0].type) != (_ONNX_TYPES[dtype], _ONNX_TYPES[out_dtype]):
          continue
        if (len(shape) == 4 == len(out_shape) and shape[3] == channels
            and out_shape[3] == out_channels and isinstance(shape[1], int) and shape[1] > 0
            and shape[1] == shape[2] and list(out_shape[1:3]) == list(shape[1:3])):
          return graph
    raise UserError(f'{path} is not a colorjax colorizer: {found}, not L float32 '
                    f'[{BATCH}, R, R, 1] -> ab [{BATCH}, R, R, 2] or uint8 RGB [{BATCH}, R, R, 3] '
                    'in and out.')

  def __call__(self, x):
    return self.session.run([self.output_name], {self.input_name: np.asarray(x)})[0]
