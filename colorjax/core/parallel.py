"""Data parallelism over every device of every process: one mesh axis, 'data'.

State is replicated (P()), batches are sharded along their first axis (P('data')), and each
process's host batch becomes its part of one global array. ``initialize`` starts JAX's
multi-controller runtime when the environment asks for several processes.
"""
import dataclasses
import os

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


@dataclasses.dataclass(frozen=True)
class Shard:
  """This process's part of the data: every ``count``-th item starting at ``index``."""
  index: int = 0
  count: int = 1


def _cluster_detected():
  """A scheduler that JAX can read the process layout from: a SLURM job with several tasks,
  an Open MPI run with several ranks, a Cloud TPU pod slice with several workers, or
  COLORJAX_DISTRIBUTED=1 (launch/tpu_pod.sh sets it)."""
  env = os.environ
  tasks = env.get('SLURM_NTASKS', env.get('SLURM_NPROCS', '1'))
  return bool((env.get('SLURM_JOB_ID') and tasks.isdigit() and int(tasks) > 1)
              or int(env.get('OMPI_COMM_WORLD_SIZE', '1')) > 1
              or ',' in env.get('TPU_WORKER_HOSTNAMES', '')
              or env.get('COLORJAX_DISTRIBUTED') == '1')


def initialize(coordinator_address=None, num_processes=None, process_id=None):
  """Starts jax.distributed for several processes, from the arguments or JAX_COORDINATOR_ADDRESS,
  JAX_NUM_PROCESSES and JAX_PROCESS_ID, or from a detected cluster; else one process."""
  env = os.environ
  coordinator_address = coordinator_address or env.get('JAX_COORDINATOR_ADDRESS')
  if num_processes is None and env.get('JAX_NUM_PROCESSES'):
    num_processes = int(env['JAX_NUM_PROCESSES'])
  if process_id is None and env.get('JAX_PROCESS_ID'):
    process_id = int(env['JAX_PROCESS_ID'])
  if coordinator_address and (num_processes or 1) > 1:
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
  elif _cluster_detected():
    jax.distributed.initialize()
  else:
    return
  logging.info('jax.distributed: process %d of %d, %d local of %d devices.',
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count())


def make_mesh():
  return Mesh(np.asarray(jax.devices()), ('data',))


def replicated(mesh):
  return NamedSharding(mesh, P())


def sharded(mesh):
  return NamedSharding(mesh, P('data'))


def shard_of_data():
  """This process's part of the data, as the input pipeline wants it."""
  return Shard(jax.process_index(), jax.process_count())


def global_batch(host_batch, mesh):
  """Host numpy arrays (this process's rows) -> global arrays sharded over 'data'."""
  sharding = sharded(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), host_batch)


def until_every_process_is_done(batches, padding):
  """``batches`` (this process's, any number) as a stream every process ends at the same step:
  a process out of batches yields ``padding`` (all rows masked) until all are out. One small
  all-gather per batch with several processes; none with one."""
  batches = iter(batches)
  while True:
    batch = next(batches, None)
    if jax.process_count() > 1:
      if not np.asarray(multihost_utils.process_allgather(np.int32(batch is not None))).any():
        return
    elif batch is None:
      return
    yield padding if batch is None else batch


def every_process(positions):
  """[positions of process 0, 1, ...] for this process's {name: non-negative int} (one
  all-gather across processes; the ints may exceed int32)."""
  if jax.process_count() == 1:
    return [dict(positions)]
  names = sorted(positions)
  halves = np.asarray([[positions[n] >> 31, positions[n] & (2 ** 31 - 1)] for n in names],
                      np.int32)
  gathered = np.asarray(multihost_utils.process_allgather(halves)).astype(np.int64)
  return [{n: int(hi) << 31 | int(lo) for n, (hi, lo) in zip(names, rows)}
          for rows in gathered]


def to_host(tree):
  """Global arrays -> full numpy arrays on every process (an all-gather across processes)."""
  return jax.tree.map(lambda x: np.asarray(multihost_utils.process_allgather(x, tiled=True)),
                      tree)
