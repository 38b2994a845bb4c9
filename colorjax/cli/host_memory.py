"""glibc's malloc, set to keep the memory that XLA:CPU frees for the next step.

An XLA:CPU executable allocates its temporary buffers as one block per run and frees it at the
end (the CycleGAN generator's forward and backward at 256²: 624 MB). glibc serves a block
above its mmap threshold (at most 32 MB) with a fresh mmap and returns it with munmap, so every
step faults in and zeroes each 4 KiB page of it again: 165,000 page faults and 0.28 s of system
time in a 1.13 s step on a 2-core CPU. Served from the main heap, which is never trimmed, the
block keeps its pages from one step to the next: 21,000 faults, 0.04 s, a 0.92 s step.
``keep_freed_memory`` asks for that, only where XLA will run on the CPU: on a GPU or TPU host
XLA's buffers live on the device, and one malloc arena would serialise the tf.data decode
threads. Training and benchmark entry points call it before JAX starts its runtime (a thread's
malloc arena is fixed by then); short, compile-bound commands do not, since one arena slows
XLA's compile threads by about 30%. The process keeps its peak memory, as an accelerator's
caching allocator does.
"""
import ctypes
import importlib.metadata
import importlib.util
import os
import platform
import typing

# mallopt's parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
_NEVER = -1   # M_TRIM_THRESHOLD -1: never trim (mallopt(3))
OPT_OUT = 'COLORJAX_MALLOC'   # =system keeps glibc's defaults


def accelerator():
  """The accelerator JAX will use, decided before it starts: the first platform in
  JAX_PLATFORMS when that is set, else an installed accelerator plugin ('cuda', 'rocm', 'tpu'
  …), else None (the CPU)."""
  platforms = os.environ.get('JAX_PLATFORMS', '').strip()
  if platforms:
    first = platforms.split(',')[0].strip()
    return None if first == 'cpu' else first
  plugins = sorted(entry.name for entry in importlib.metadata.entry_points(group='jax_plugins'))
  if importlib.util.find_spec('libtpu') is not None:
    plugins.append('tpu')
  return plugins[0] if plugins else None


def _not_kept_because():
  """Why keep_freed_memory leaves malloc as it is, or None where it applies."""
  if os.environ.get(OPT_OUT) == 'system':
    return f'{OPT_OUT}=system'
  if platform.libc_ver()[0] != 'glibc':
    return 'not glibc'
  if platform_name := accelerator():
    return f'XLA runs on the accelerator ({platform_name})'
  return None


class Setting(typing.NamedTuple):
  kept: bool   # whether freed memory is kept
  line: str    # one line for the log: whether it is on, and why


def keep_freed_memory():
  """Where XLA runs on the CPU: one malloc arena for every thread (only the main arena's heap
  can hold blocks above 64 MB), no mmap-ed blocks, no trimming."""
  why = _not_kept_because()
  if why is None and _set_malloc():
    return Setting(True, 'malloc: freed memory kept for the next step (XLA runs on the CPU).')
  return Setting(False, f'malloc: glibc defaults ({why or "mallopt refused"}).')


def _set_malloc():
  mallopt = ctypes.CDLL(None).mallopt
  return all(mallopt(option, value) == 1 for option, value in (
      (_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _NEVER)))
