"""JAX's persistent compilation cache, on by default: a process that compiles a program another
process (an earlier run, a preempted job, a resubmission, another process of the same run)
compiled already loads it instead.

Where: ``config.compilation_cache_dir`` when a config sets it, else ``$COLORJAX_COMPILATION_CACHE``,
else JAX's own ``$JAX_COMPILATION_CACHE_DIR``, else the user's cache folder
(``$XDG_CACHE_HOME/colorjax/xla``, by default ``~/.cache/colorjax/xla``); ``''`` turns it off.
A shared file system lets every host and every resubmission use one folder (only process 0
writes, as JAX does). Programs compiled in under ``MIN_COMPILE_S`` are not saved, unless
``$JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` says otherwise.

The cache is never a reason for a run to fail: a folder that cannot be created compiles without
it, one that cannot be written is read only, an entry that cannot be read or written is
compiled, each said in one line. Entries are keyed by the program, the devices and the
jax/jaxlib versions (another version simply misses), and the least recently used are removed
beyond ``MAX_BYTES``.
"""
import os
import tempfile
import threading
import warnings

from absl import logging

ENV = 'COLORJAX_COMPILATION_CACHE'
MAX_BYTES = 4 * 2**30           # least recently used entries go beyond this
MIN_COMPILE_S = 0.5             # programs that compile faster are not worth a file

_HIT = '/jax/compilation_cache/cache_hits'
_REQUEST = '/jax/compilation_cache/compile_requests_use_cache'
_counts = {_HIT: 0, _REQUEST: 0}
_lock = threading.Lock()
_listening = False


def default_directory():
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'colorjax', 'xla')


def directory(configured=None):
  """The folder to use: ``configured`` (a config's field; None when unset), the environment
  variables, or the default; '' means off."""
  for variable in (ENV, 'JAX_COMPILATION_CACHE_DIR'):
    if configured is None:
      configured = os.environ.get(variable)
  if configured is None:
    return default_directory()
  return os.path.abspath(os.path.expanduser(configured)) if configured else ''


def _writable(path):
  try:
    with tempfile.TemporaryFile(dir=path):
      return True
  except OSError:
    return False


def enable(configured=None):
  """Points JAX's persistent compilation cache at ``directory(configured)``, before anything
  compiles; a folder it cannot use is one warning line. Returns the folder, '' when off."""
  import jax
  _listen()
  path = directory(configured)
  if not path:
    jax.config.update('jax_enable_compilation_cache', False)
    logging.debug('Compilation cache: off (compilation_cache_dir is empty).')
    return ''
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    jax.config.update('jax_enable_compilation_cache', False)
    logging.warning('Compilation cache: %s cannot be created (%s); compiling without it.', path,
                    e.strerror)
    return ''
  writable = _writable(path)
  jax.config.update('jax_enable_compilation_cache', True)
  jax.config.update('jax_compilation_cache_dir', path)
  if 'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS' not in os.environ:
    jax.config.update('jax_persistent_cache_min_compile_time_secs', MIN_COMPILE_S)
  # Eviction keeps access times and a lock file in the folder: only where it can be written.
  jax.config.update('jax_compilation_cache_max_size', MAX_BYTES if writable else -1)
  if writable:
    logging.debug('Compilation cache: %s.', path)
  else:
    logging.warning('Compilation cache: %s is read-only here; programs found in it are loaded, '
                    'new ones are compiled and not saved.', path)
  return path


def enabled():
  """Whether this process reads and writes the persistent compilation cache."""
  import jax
  return bool(jax.config.jax_enable_compilation_cache and jax.config.jax_compilation_cache_dir)


def counts():
  """(compiles that asked the cache, programs it served) in this process so far."""
  with _lock:
    return _counts[_REQUEST], _counts[_HIT]


def _listen():
  """Counts the cache's requests and hits, and turns JAX's warning about an entry it could not
  read or write (with the exception's text) into one line of colorjax's log."""
  global _listening
  if _listening:
    return
  _listening = True
  import jax

  def count(event, **kwargs):
    del kwargs
    if event in _counts:
      with _lock:
        _counts[event] += 1

  jax.monitoring.register_event_listener(count)
  shown = warnings.showwarning

  def show(message, category, filename, lineno, file=None, line=None):
    text = str(message)
    if ' persistent compilation cache entry ' not in text:
      return shown(message, category, filename, lineno, file, line)
    verb = 'read' if text.startswith('Error reading') else 'saved'
    detail = text.split(' entry for ', 1)[-1].splitlines()[0][:200]
    logging.warning('Compilation cache: an entry could not be %s (%s); the program was '
                    'compiled instead.', verb, detail)

  warnings.showwarning = show
