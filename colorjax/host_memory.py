"""glibc's malloc, set to keep the memory that XLA:CPU frees for the next step.

An XLA:CPU executable allocates its temporary buffers as one block per run and frees it at the
end (the CycleGAN generator's forward and backward at 256²: 624 MB). glibc serves a block
above its mmap threshold (at most 32 MB) with a fresh mmap and returns it with munmap, so every
step faults in and zeroes each 4 KiB page of it again: 165,000 page faults and 0.28 s of system
time in a 1.13 s step on a 2-core CPU. Served from the main heap, which is never trimmed, the
block keeps its pages from one step to the next: 21,000 faults, 0.04 s, a 0.92 s step.
``keep_freed_memory`` asks for that. Training and benchmark entry points call it before JAX
starts its runtime (a thread's malloc arena is fixed by then); short, compile-bound commands
do not, since one arena slows XLA's compile threads by about 30%. The process keeps its peak
memory, as an accelerator's caching allocator does.
"""
import ctypes
import os
import platform

# mallopt's parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
_NEVER = -1   # M_TRIM_THRESHOLD -1: never trim (mallopt(3))
OPT_OUT = 'COLORJAX_MALLOC'   # =system keeps glibc's defaults


def keep_freed_memory():
  """One malloc arena for every thread (only the main arena's heap can hold blocks above
  64 MB), no mmap-ed blocks, no trimming. Returns whether it was set: not off glibc, nor with
  COLORJAX_MALLOC=system."""
  if os.environ.get(OPT_OUT) == 'system' or platform.libc_ver()[0] != 'glibc':
    return False
  mallopt = ctypes.CDLL(None).mallopt
  return all(mallopt(option, value) == 1 for option, value in (
      (_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _NEVER)))
