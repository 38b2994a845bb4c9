"""What the console shows: colorjax's own log lines, other libraries' warnings and errors."""
import logging as std_logging

from absl import logging


def quiet_library_logs():
  """Drops other libraries' INFO chatter (Orbax logs every save in detail) from the console."""

  def own_or_important(record):
    return record.levelno >= std_logging.WARNING or '/colorjax/' in record.pathname

  logging.get_absl_handler().addFilter(own_or_important)
