"""The TrainState every task uses: everything a resume needs, as one pytree."""
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import optax
from flax import struct


class TrainState(struct.PyTreeNode):
  """Step, params and batch stats of every network, optimiser states, the RNG key and any other
  arrays a task carries from step to step (``extra``: CycleGAN's image pools).

  ``model``, ``tx``, ``config`` and ``constants`` are static (not saved, not traced): ``init``
  rebuilds them from the config on resume. A GAN's ``model`` and ``tx`` map each group
  ('generator', 'discriminator') to its networks and its optimiser. ``constants`` (hashable)
  holds what a step reads that ``init`` computes on the host (classification's class weights):
  the step's program holds them as constants, and never reads a file for them.
  """
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  rng: jax.Array
  model: nn.Module = struct.field(pytree_node=False)
  tx: optax.GradientTransformation = struct.field(pytree_node=False)
  config: ml_collections.FrozenConfigDict = struct.field(pytree_node=False)
  extra: Any = None
  constants: Any = struct.field(pytree_node=False, default=None)

  def variables(self):
    return {'params': self.params, 'batch_stats': self.batch_stats}

  def for_predict(self):
    """What predict reads: the optimiser state and a task's extra arrays stay behind."""
    return self.replace(opt_state=None, extra=None)
