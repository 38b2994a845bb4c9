"""``colorjax export``: a trained run as one self-contained file that ``colorize`` can use.

  colorjax export --workdir=runs/demo --output=demo.cjx [--resolution=256]
  colorjax export --workdir=runs/demo --format=onnx --output=demo.onnx [--graph=rgb]
  colorjax colorize --exported=demo.cjx photos/ --output=out/     (or --exported=demo.onnx)

``--format=jax`` (the default) writes the ``jax.export`` serialisation of the run's predict
function at a fixed network resolution (any batch size), lowered for CPU, CUDA and TPU, and its
weights (colorjax/inference/artifact.py); ``--format=onnx`` an ONNX graph for ONNX Runtime
(colorjax/inference/onnx_model.py). Running either needs no training config or model code. The
file is written whole or not at all, and never over one that exists unless ``--overwrite``.
"""
import os

from absl import flags

from colorjax.core import validation
from colorjax.inference import artifact, onnx_export, onnx_model
from colorjax.training import runs

FLAGS = flags.FlagValues()  # this command's own flags (colorjax SUB --help lists them)

_WORKDIR = flags.DEFINE_string('workdir', None, 'Training run to export (latest checkpoint).',
                               flag_values=FLAGS)
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'One checkpoint folder, RUN/checkpoints/N.',
                                  flag_values=FLAGS)
_OUTPUT = flags.DEFINE_string('output', None, 'The file to write (model.cjx, or model.onnx for '
                              '--format=onnx).', flag_values=FLAGS)
_FORMAT = flags.DEFINE_enum('format', 'jax', ['jax', 'onnx'], 'jax: a jax.export file for '
                            'colorjax; onnx: an ONNX graph for ONNX Runtime.', flag_values=FLAGS)
_GRAPH = flags.DEFINE_enum('graph', 'lab', list(onnx_model.GRAPHS), '--format=onnx only. lab: '
                           'L in, ab out (Lab units; what colorize --exported uses); rgb: uint8 '
                           'RGB in and out at the network resolution.', flag_values=FLAGS)
_OVERWRITE = flags.DEFINE_boolean('overwrite', False, 'Replace --output if it exists.',
                                  flag_values=FLAGS)
_RESOLUTION = flags.DEFINE_integer('resolution', None,
                                   "Network resolution (default: the run's image_size).",
                                   flag_values=FLAGS)
_PLATFORMS = flags.DEFINE_list('platforms', list(artifact.PLATFORMS),
                               'Platforms to lower for (cpu, cuda, rocm, tpu).', flag_values=FLAGS)


def main(argv):
  if len(argv) > 1 or not _OUTPUT.value or not (_WORKDIR.value or _CHECKPOINT.value):
    raise validation.UserError('give --workdir=RUN (or --checkpoint=PATH) and --output=FILE.')
  output, onnx = _OUTPUT.value, _FORMAT.value == 'onnx'
  if onnx != output.lower().endswith('.onnx'):
    raise validation.UserError(f'--output={output} does not fit --format={_FORMAT.value}: ONNX '
                               'files (--format=onnx) are named *.onnx, and only they are.')
  if _GRAPH.value != 'lab' and not onnx:
    raise validation.UserError('--graph is for --format=onnx only.')
  if os.path.lexists(output) and not _OVERWRITE.value:
    raise validation.UserError(f'{output} exists already; give another --output, or '
                               '--overwrite to replace it.')
  run = runs.load(_WORKDIR.value, _CHECKPOINT.value)
  resolution = _RESOLUTION.value or run.config.image_size
  runs.check_resolution(run, resolution)
  if onnx:
    meta = onnx_export.save(output, run, resolution, _GRAPH.value)
    target = f'ONNX (opset {meta["opset"]}, {meta["input"]} -> {meta["output"]})'
  else:
    meta = artifact.save(output, run, resolution, _PLATFORMS.value)
    target = ', '.join(meta['platforms'])
  size = os.path.getsize(output) / 2 ** 20
  print(f'Exported step {meta["step"]} of {run.workdir} at {resolution}² for {target} to '
        f'{output} ({size:.1f} MiB).')
