"""Data parallelism over every device of every process: one mesh axis, 'data'.

State is replicated (P()), batches are sharded along their first axis (P('data')), and each
process's host batch becomes its part of one global array.
"""
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def make_mesh():
  return Mesh(np.asarray(jax.devices()), ('data',))


def replicated(mesh):
  return NamedSharding(mesh, P())


def sharded(mesh):
  return NamedSharding(mesh, P('data'))


def shard_of_data():
  """This process's part of the data, as the input pipeline wants it."""
  from colorjax.data.sources import Shard  # TensorFlow-free at import of this module
  return Shard(jax.process_index(), jax.process_count())


def global_batch(host_batch, mesh):
  """Host numpy arrays (this process's rows) -> global arrays sharded over 'data'."""
  sharding = sharded(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), host_batch)
