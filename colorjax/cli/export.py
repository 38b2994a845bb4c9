"""``colorjax export``: a trained run as one self-contained file that ``colorize`` can use.

  colorjax export --workdir=runs/demo --output=demo.cjx [--resolution=256]
  colorjax colorize --exported=demo.cjx photos/ --output=out/

The file holds the ``jax.export`` serialisation of the run's predict function at a fixed
network resolution (any batch size), lowered for CPU, CUDA and TPU, and its weights; see
colorjax/inference/artifact.py for the format. Running it needs no training config or model
code.
"""
import os

from absl import flags

from colorjax.core import validation
from colorjax.inference import artifact
from colorjax.training import runs

FLAGS = flags.FlagValues()  # this command's own flags (colorjax SUB --help lists them)

_WORKDIR = flags.DEFINE_string('workdir', None, 'Training run to export (latest checkpoint).',
                               flag_values=FLAGS)
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'One checkpoint folder, RUN/checkpoints/N.',
                                  flag_values=FLAGS)
_OUTPUT = flags.DEFINE_string('output', None, 'The file to write (e.g. model.cjx).',
                              flag_values=FLAGS)
_RESOLUTION = flags.DEFINE_integer('resolution', None,
                                   "Network resolution (default: the run's image_size).",
                                   flag_values=FLAGS)
_PLATFORMS = flags.DEFINE_list('platforms', list(artifact.PLATFORMS),
                               'Platforms to lower for (cpu, cuda, rocm, tpu).', flag_values=FLAGS)


def main(argv):
  if len(argv) > 1 or not _OUTPUT.value or not (_WORKDIR.value or _CHECKPOINT.value):
    raise validation.UserError('give --workdir=RUN (or --checkpoint=PATH) and --output=FILE.')
  run = runs.load(_WORKDIR.value, _CHECKPOINT.value)
  resolution = _RESOLUTION.value or run.config.image_size
  runs.check_resolution(run, resolution)
  meta = artifact.save(_OUTPUT.value, run, resolution, _PLATFORMS.value)
  size = os.path.getsize(_OUTPUT.value) / 2 ** 20
  print(f'Exported step {meta["step"]} of {run.workdir} at {resolution}² for '
        f'{", ".join(meta["platforms"])} to {_OUTPUT.value} ({size:.1f} MiB).')
