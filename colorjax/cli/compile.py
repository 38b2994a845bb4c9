"""``colorjax compile``: a config's programs compiled by XLA:TPU on this machine (no TPU needed).

  colorjax compile --config=configs/unet.py --topology=v5e:2x2 --config.compute_dtype=bfloat16
  colorjax compile --config=configs/cyclegan.py --topology=v6e:2x2 --max_batch
  colorjax compile --config=configs/unet.py --topology=v5e:2x2 --predict --resolution=512

Compiles the training step exactly as training jits it (or, with --predict, the colorize/export
function at --resolution) for the compile-only devices of a TPU topology, and prints per device
HBM (arguments, temporaries, outputs) against the chip's, whether it fits, the compiled FLOPs and
bytes per image, the roofline step time and images/sec per chip, and the compile time. The
figures are the compiler's estimate, not a measured run. --max_batch finds the largest global
batch that fits (a compile per trial). The JSON report goes to --output (default
compile/CONFIG-TOPOLOGY-MODE-DTYPE-bBATCH.json; an existing file is never replaced: NAME-2, ...).
Needs libtpu (`make tpu-compiler`) and JAX only, no TensorFlow. See docs/performance.md.
"""
import json
import os

import jax
from absl import flags
from ml_collections import config_flags

from colorjax.cli import console
from colorjax.core import files
from colorjax.core.validation import UserError
from colorjax.training import tpu_compile

FLAGS = flags.FlagValues()  # this command's own flags (colorjax SUB --help lists them)

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.',
                                          flag_values=FLAGS)
_TOPOLOGY = flags.DEFINE_string('topology', 'v5e:2x2', 'TPU topology: GENERATION:SHAPE with '
                                f'GENERATION among {", ".join(tpu_compile.CHIPS)} '
                                '(v5e:2x2, v6e:4x4, v4:2x2x1, v5p:2x2x1, ...).', flag_values=FLAGS)
_PREDICT = flags.DEFINE_boolean('predict', False, 'Compile predict (colorize, export) instead of '
                                'the training step, at config.batch_size images.',
                                flag_values=FLAGS)
_RESOLUTION = flags.DEFINE_integer('resolution', None, "--predict's network resolution (default: "
                                   'config.image_size).', flag_values=FLAGS)
_MAX_BATCH = flags.DEFINE_boolean('max_batch', False, 'Find the largest global batch that fits '
                                  "in the chips' HBM (bisection over compiles).",
                                  flag_values=FLAGS)
_OUTPUT = flags.DEFINE_string('output', None, 'The JSON report (default: under compile/).',
                              flag_values=FLAGS)
_HLO = flags.DEFINE_string('hlo', None, "Also write the compiled program's HLO text to this file "
                           '(what carries the bytes; not with --max_batch).', flag_values=FLAGS)
_TOP = flags.DEFINE_integer('top', 0, "Also list the program's N instructions with the most of "
                            "XLA:TPU's estimated cycles, with the JAX operation each came from.",
                            flag_values=FLAGS)
flags.mark_flags_as_required(['config'], flag_values=FLAGS)


def free_path(path):
  """``path``, or NAME-2, NAME-3, ... beside it when a file of that name is there."""
  stem, extension = os.path.splitext(path)
  n = 1
  while os.path.exists(path):
    n += 1
    path = f'{stem}-{n}{extension}'
  return path


def default_output(config, mode):
  name = os.path.splitext(os.path.basename(config_flags.get_config_filename(FLAGS['config'])))[0]
  topology = _TOPOLOGY.value.replace(':', '_')
  return os.path.join('compile', f'{name}-{topology}-{mode}-{config.compute_dtype}-'
                                 f'b{config.batch_size}.json')


def main(argv):
  if len(argv) > 1:
    raise UserError(f'colorjax compile takes no positional arguments (got {argv[1:]}).')
  jax.config.update('jax_platforms', 'cpu')   # the host runs JAX; the TPU is only compiled for
  config = _CONFIG.value
  mode = 'predict' if _PREDICT.value else 'train'
  if _RESOLUTION.value is not None and not _PREDICT.value:
    raise UserError('--resolution is for --predict; the training step compiles at '
                    'config.image_size.')
  if _RESOLUTION.value is not None and _RESOLUTION.value < 1:
    raise UserError(f'--resolution={_RESOLUTION.value} is not allowed; use a positive size.')
  if _HLO.value and _MAX_BATCH.value:
    raise UserError('--hlo writes one program: give it without --max_batch.')
  tpu_compile.parse_topology(_TOPOLOGY.value)
  with console.quiet_native_start_up():   # libtpu's start-up lines about the missing TPU
    devices = tpu_compile.topology_devices(_TOPOLOGY.value)
  if _MAX_BATCH.value:
    print(f'Largest global batch on {_TOPOLOGY.value}: compiling at growing batches...')
    batch, report = tpu_compile.max_batch(config, _TOPOLOGY.value, devices, mode,
                                          _RESOLUTION.value)
    if report is None:
      raise UserError(f'not even {len(devices)} images (one per device) fit on '
                      f'{_TOPOLOGY.value}.')
    report['max_batch'] = batch
    config.batch_size = batch
  else:
    report, compiled = tpu_compile.compile_report(config, _TOPOLOGY.value, devices, mode,
                                                  _RESOLUTION.value)
    if compiled is not None and (_HLO.value or _TOP.value):
      text = compiled.as_text()
      if _HLO.value:
        files.write_whole(free_path(_HLO.value), text)
      report['top'] = tpu_compile.where_cycles_go(text, _TOP.value) if _TOP.value else []
  print(tpu_compile.table(report))
  for row in report.get('top', []):
    print(f"{100 * row['share']:11.1f}%  {row['opcode']} {row['shape'][:60]}  {row['source']}")
  if _MAX_BATCH.value:
    print(f'   max batch: {report["max_batch"]} (the next multiple of {len(devices)} does not '
          'fit)')
  path = free_path(_OUTPUT.value or default_output(config, mode))
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  files.write_whole(path, json.dumps(report, indent=2) + '\n')
  print(f'Report: {path}')
