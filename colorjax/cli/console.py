"""What the console shows: colorjax's own log lines, other libraries' warnings and errors."""
import contextlib
import logging as std_logging
import os
import sys

from absl import logging


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
  sys.stderr.flush()
  saved = os.dup(2)
  with open(os.devnull, 'w') as devnull:
    os.dup2(devnull.fileno(), 2)
  try:
    yield
  finally:
    os.dup2(saved, 2)
    os.close(saved)
