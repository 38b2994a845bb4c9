"""Where a process's start-up goes: phases from its start (this module's import, the first thing
the ``colorjax`` command does) to its first step or first output, logged as one line.

  startup.mark('imports'); ...; startup.mark('compile', compiled=True); ...
  logging.info('%s', startup.line('the first step'))
"""
import time

from colorjax.core import compilation_cache

_START = time.perf_counter()
_phases = []                  # [(name, seconds, note)]
_last = [_START, compilation_cache.counts()[1]]


def mark(name, compiled=False):
  """Ends the phase ``name`` now. ``compiled``: it compiled programs, and the line says how many
  of them the persistent compilation cache served."""
  now, hits = time.perf_counter(), compilation_cache.counts()[1]
  note = ''
  if compiled:
    served = hits - _last[1]
    note = f' ({served} program{"s" * (served != 1)} from the compilation cache)'
  _phases.append((name, now - _last[0], note))
  _last[:] = [now, hits]


def seconds():
  """{phase: seconds} so far, and 'total' since the start."""
  timings = {}
  for name, duration, _ in _phases:
    timings[name] = timings.get(name, 0.0) + duration
  return {**timings, 'total': _last[0] - _START}


def line(goal):
  """'Start-up: 12.3 s to GOAL: imports 4.1 s, …' over the phases marked so far (then
  forgotten, so that a second run in the process lists only its own)."""
  parts = ', '.join(f'{name} {duration:.1f} s{note}' for name, duration, note in _phases)
  _phases.clear()
  return f'Start-up: {_last[0] - _START:.1f} s to {goal}: {parts}.'
