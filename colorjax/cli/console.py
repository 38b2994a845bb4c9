"""What the console shows: colorjax's own log lines, other libraries' warnings and errors."""
import contextlib
import logging as std_logging
import os
import signal
import sys

from absl import logging

_stderr = None  # the console's stderr while quiet_native_start_up points fd 2 elsewhere


def quiet_library_logs():
  """Drops other libraries' INFO chatter (Orbax logs every save in detail) from the console;
  clu's progress and scalar lines stay."""

  def own_or_important(record):
    return (record.levelno >= std_logging.WARNING or '/colorjax/' in record.pathname
            or '/clu/' in record.pathname)

  logging.get_absl_handler().addFilter(own_or_important)


@contextlib.contextmanager
def quiet_native_start_up():
  """Hides what native libraries write to the process's stderr while they load (TensorFlow's
  oneDNN and CPU-feature lines, absl's "before InitializeLog" warning), unless
  TF_CPP_MIN_LOG_LEVEL=0 asks for them. Python errors still surface: they are raised, and
  printed after the stream is back."""
  if os.environ.get('TF_CPP_MIN_LOG_LEVEL') == '0':
    yield
    return
  global _stderr
  sys.stderr.flush()
  saved = _stderr = os.dup(2)
  with open(os.devnull, 'w') as devnull:
    os.dup2(devnull.fileno(), 2)
  try:
    yield
  finally:
    os.dup2(saved, 2)
    _stderr = None
    os.close(saved)


def exit_now(line, code):
  """Writes ``line`` to the console's stderr and ends the process at once with ``code``: no
  exception unwinds through what the main thread is doing (TensorFlow's import hung on one), and
  no thread is waited for. Safe in a signal handler (sys.stderr is line-buffered: no flush)."""
  os.write(2 if _stderr is None else _stderr, f'{line}\n'.encode())
  os._exit(code)


def exit_on_sigterm(line):
  """Until another handler takes SIGTERM over (the training loop's, which saves a checkpoint),
  SIGTERM prints ``line`` and exits with 143 as soon as the main thread runs Python again."""
  signal.signal(signal.SIGTERM, lambda signum, frame: exit_now(line, 128 + signum))
