"""The ``colorjax`` command: ``colorjax SUBCOMMAND [--flags]``; ``colorjax --help`` lists them.

Each subcommand is a module with absl flags and ``main(argv)``; only the chosen one is imported,
so subcommands never see each other's flags.
"""
import importlib
import sys

from absl import app

from colorjax import console
from colorjax.validation import UserError

COMMANDS = {
    'colorize': ('colorjax.colorize', 'colour photos with a trained checkpoint'),
    'evaluate': ('colorjax.evaluate', 'PSNR, SSIM, ab error, CIEDE2000, colourfulness and FID '
                 'of a trained run on held-out images'),
    'export': ('colorjax.export', 'write a trained run as one self-contained jax.export file'),
    'compare': ('colorjax.compare', 'trained runs side by side: one metrics table and a grid '
                'of held-out crops'),
    'prepare': ('colorjax.prepare', 'build a TFDS data set (tfds:NAME, manual downloads '
                'included) where training finds it'),
    'prior': ('colorjax.prior', 'the ab-bin prior of a data source (classification task)'),
    'preview': ('colorjax.preview',
                'write a contact sheet of training crops with their L and ab channels'),
    'bench': ('colorjax.bench', 'training-step time, images/sec, FLOPs and utilisation on '
              'synthetic device batches (JAX only) or the real input pipeline'),
    'bench-data': ('colorjax.data.benchmark',
                   "input-pipeline images/sec per core (folder and TFDS) next to TensorFlow's "
                   'own decode + crop + batch'),
}


def usage():
  lines = ['usage: colorjax SUBCOMMAND [--flags]   (colorjax SUBCOMMAND --help for its flags)',
           '', 'subcommands:']
  width = max(map(len, COMMANDS))
  lines += [f'  {name:<{width}}  {summary}' for name, (_, summary) in COMMANDS.items()]
  return '\n'.join(lines)


def main(argv=None):
  argv = sys.argv if argv is None else argv
  if len(argv) < 2 or argv[1] in ('-h', '--help', 'help'):
    print(usage())
    return 0 if len(argv) >= 2 else 2
  name = argv[1]
  if name not in COMMANDS:
    print(f"colorjax: unknown subcommand '{name}'.\n\n{usage()}", file=sys.stderr)
    return 2
  module = importlib.import_module(COMMANDS[name][0])
  console.quiet_library_logs()
  try:
    app.run(module.main, argv=[f'colorjax {name}'] + list(argv[2:]))
  except UserError as e:  # a bad config value or data source: one sentence, no traceback
    print(f'colorjax {name}: {e}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
