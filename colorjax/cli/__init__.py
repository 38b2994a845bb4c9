"""The ``colorjax`` command: ``colorjax SUBCOMMAND [--flags]``; ``colorjax --help`` lists them.

The command layer: every module of this package that defines flags is a subcommand with its own
``FLAGS`` (an absl FlagValues, so the commands import together without clashing) and
``main(argv)``. ``colorjax SUB --help`` prints that module's docstring and flags.
"""
import importlib
import os
import sys

from absl import app, flags

from colorjax.core import startup  # noqa: I001  (first: its clock starts the start-up line)
from colorjax.cli import console
from colorjax.core import compilation_cache
from colorjax.core.validation import UserError

COMMANDS = {
    'train': ('colorjax.cli.train', 'train a config (or resume its run) in --workdir'),
    'colorize': ('colorjax.cli.colorize', 'colour photos with a trained checkpoint'),
    'evaluate': ('colorjax.cli.evaluate', 'PSNR, SSIM, ab error, CIEDE2000, colourfulness and FID '
                 'of a trained run on held-out images'),
    'serve': ('colorjax.cli.serve', 'a web page where people drop photos and get them colorized, '
              'from one or several runs or exported files'),
    'export': ('colorjax.cli.export', 'write a trained run as one self-contained jax.export file'),
    'compare': ('colorjax.cli.compare', 'trained runs side by side: one metrics table and a grid '
                'of held-out crops'),
    'prepare': ('colorjax.cli.prepare', 'build a TFDS data set (tfds:NAME, manual downloads '
                'included) where training finds it'),
    'prior': ('colorjax.cli.prior', 'the ab-bin prior of a data source (classification task)'),
    'preview': ('colorjax.cli.preview',
                'write a contact sheet of training crops with their L and ab channels'),
    'bench': ('colorjax.cli.bench', 'training-step time, images/sec, FLOPs and utilisation on '
              'synthetic device batches (JAX only) or the real input pipeline'),
    'compile': ('colorjax.cli.compile', "a config's training step or predict compiled by XLA:TPU "
                'for a TPU topology on this machine: HBM fit, FLOPs and bytes per image, roofline'),
    'bench-data': ('colorjax.cli.bench_data',
                   "input-pipeline images/sec per core (folder and TFDS) next to TensorFlow's "
                   'own decode + crop + batch'),
}


def usage():
  lines = ['usage: colorjax SUBCOMMAND [--flags]   (colorjax SUBCOMMAND --help for its flags)',
           '', 'subcommands:']
  width = max(map(len, COMMANDS))
  lines += [f'  {name:<{width}}  {summary}' for name, (_, summary) in COMMANDS.items()]
  return '\n'.join(lines)


def command_help(name, module):
  """The subcommand's docstring and its own flags."""
  return (f'colorjax {name}: {COMMANDS[name][1]}\n\n{module.__doc__.strip()}\n\nflags:\n'
          f'{module.FLAGS.get_help(include_special_flags=False)}')


def command_line_error(error):
  """One line for a command line the flags refuse: absl's sentence, or the last line of the
  config file's own error (not its traceback), or the config field an override names that the
  config does not have."""
  text = str(error).replace('\\n', '\n')
  if isinstance(error, (AttributeError, KeyError)):   # --config.a.b=… on a field that is not there
    lines = [line.strip(' \'"\\') for line in text.splitlines() if line.strip(' \'"\\')]
    return 'a --config override names a field the config does not have: ' + '; '.join(lines)
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  flag = lines[0].split(': ')[0] if lines[0].startswith('flag --') else ''
  last = lines[-1]
  return last if not flag or last.startswith(flag) else f'{flag}: {last}'


def _split_absl_flags(args, own):
  """(args for the command's FLAGS, absl's own logging/debugging flags such as --verbosity)."""
  mine, absl_own = [], []
  for arg in args:
    name = arg.lstrip('-').split('=')[0]
    bare = name[2:] if name.startswith('no') else name
    is_absl = arg.startswith('-') and name not in own and bare not in own and (
        name in flags.FLAGS or bare in flags.FLAGS)
    (absl_own if is_absl else mine).append(arg)
  return mine, absl_own


def _with_compilation_cache(module):
  """``module.main``, after JAX's persistent compilation cache is set up where the command's
  config (``compilation_cache_dir``) or the environment puts it."""
  config = module.FLAGS['config'].value if 'config' in module.FLAGS else None
  configured = config.get('compilation_cache_dir') if config is not None else None

  def run(argv):
    compilation_cache.enable(configured)
    return module.main(argv)
  return run


def main(argv=None):
  argv = sys.argv if argv is None else argv
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # TensorFlow's C++ INFO and WARNING lines
  if len(argv) < 2 or argv[1] in ('-h', '--help', 'help'):
    print(usage())
    return 0 if len(argv) >= 2 else 2
  name = argv[1]
  if name not in COMMANDS:
    print(f"colorjax: unknown subcommand '{name}'.\n\n{usage()}", file=sys.stderr)
    return 2
  with console.quiet_native_start_up():
    module = importlib.import_module(COMMANDS[name][0])
  args = list(argv[2:])
  if {'-h', '--help', '--helpshort', '--helpfull'} & set(args):
    print(command_help(name, module))
    return 0
  mine, absl_own = _split_absl_flags(args, module.FLAGS)
  program = f'colorjax {name}'
  try:
    positional = module.FLAGS([program] + mine)
    for flag in module.FLAGS:   # a config that failed to load says so on first use: now
      getattr(module.FLAGS[flag].value, 'keys', None)
  except (flags.Error, AttributeError, KeyError, ValueError, OSError) as e:
    print(f'{program}: {command_line_error(e)} (colorjax {name} --help lists the flags)',
          file=sys.stderr)
    return 2
  console.quiet_library_logs()
  try:
    app.run(_with_compilation_cache(module), argv=[program] + absl_own + positional[1:])
  except UserError as e:  # a bad config value or data source: one sentence, no traceback
    print(f'{program}: {e}', file=sys.stderr)
    return 2
  return 0
