"""``colorjax train --config=configs/unet.py --workdir=DIR``: train, or resume the run in DIR.

The config is validated before anything compiles or any folder is created. Several processes
(hosts, or one per GPU) start the same command; see docs/scaling.md.
"""
import os
import tempfile

from absl import flags, logging
from ml_collections import config_flags

from colorjax.cli import console, host_memory
from colorjax.core import startup
from colorjax.core.validation import UserError

FLAGS = flags.FlagValues()  # this command's own flags (colorjax SUB --help lists them)

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.',
                                          lock_config=True, flag_values=FLAGS)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Folder for checkpoints, logs and samples.',
                               flag_values=FLAGS)
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None, 'Several processes: host:port of process 0 (or '
    'JAX_COORDINATOR_ADDRESS); SLURM, Open MPI and Cloud TPU pods are detected without it.',
    flag_values=FLAGS)
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None,
                                      'Several processes: how many (or JAX_NUM_PROCESSES).',
                                      flag_values=FLAGS)
_PROCESS_ID = flags.DEFINE_integer('process_id', None,
                                   "Several processes: this one's index (or JAX_PROCESS_ID).",
                                   flag_values=FLAGS)
flags.mark_flags_as_required(['config', 'workdir'], flag_values=FLAGS)


def check_room(workdir):
  """One sentence, before anything loads, when the workdir's disk (or, before it exists, its
  parent folder's) or the temporary folder that TensorFlow's import writes in refuses a small
  write: a full disk or quota."""
  folder = os.path.abspath(workdir)
  while not os.path.isdir(folder):
    folder = os.path.dirname(folder)
  try:
    with tempfile.TemporaryFile(dir=folder) as f:   # nameless: nothing is left behind
      f.write(bytes(4096))
      f.flush()
      os.fsync(f.fileno())
  except OSError as e:
    raise UserError(f'Cannot write to the workdir {workdir} ({e.strerror}); make room and run '
                    'the same command.') from None
  try:
    tempfile.gettempdir()
  except OSError as e:
    raise UserError(f'Cannot write a temporary file ({e.strerror}); make room there (or set '
                    'TMPDIR) and run the same command.') from None


def main(argv):
  del argv
  workdir = _WORKDIR.value
  console.exit_on_sigterm(f'colorjax train: stopped by SIGTERM before the training loop started '
                          f'(or after it ended); the last complete checkpoint, if any, stays in '
                          f'{workdir}.')
  malloc = host_memory.keep_freed_memory()  # before JAX allocates anything
  console.quiet_library_logs()
  logging.info('%s', malloc.line)
  check_room(workdir)
  # JAX, TensorFlow and the training modules load only now, under the malloc setting above.
  with console.quiet_native_start_up():
    from colorjax.core import parallel
    from colorjax.data import pipeline  # noqa: F401  (TensorFlow, loaded quietly)
    from colorjax.training import experiment, train
  startup.mark('imports')
  parallel.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  experiment.validate(_CONFIG.value)
  try:
    train.train_and_evaluate(_CONFIG.value, workdir)
  except train.Interrupted as e:   # a second Ctrl-C: no writer thread may finish a save now
    console.exit_now(f'colorjax train: {e}', 130)
