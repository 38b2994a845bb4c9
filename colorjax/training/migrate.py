"""Checkpoints of runs trained before a network's variables moved, restored into today's state.

The one move so far: the ResNet generator's residual blocks became one ``nn.scan`` (their
layers stacked under ``resnet.BLOCKS``). A state's variables, and the optimiser's moments that
mirror them, are read in the layout of the checkpoint and converted.
"""
import jax

from colorjax.models import resnet


def _blocks(tree):
  """The number of scanned blocks of a scanned ResNet generator's collection ``tree``."""
  return jax.tree.leaves(tree[resnet.BLOCKS])[0].shape[0]


def _is_generator(node):
  return isinstance(node, dict) and resnet.BLOCKS in node


def before_scan(like):
  """The abstract state ``like`` (ShapeDtypeStructs) with every scanned ResNet generator's
  collection in the layout before the scan; None when ``like`` has none (nothing moved)."""

  def unstack(leaf):
    return [jax.ShapeDtypeStruct(leaf.shape[1:], leaf.dtype, sharding=leaf.sharding)
            ] * leaf.shape[0]

  parts, treedef = jax.tree.flatten(like, is_leaf=_is_generator)
  if not any(map(_is_generator, parts)):
    return None
  return treedef.unflatten([resnet.unstack_blocks(part, unstack) if _is_generator(part) else part
                            for part in parts])


def to_current(saved, like):
  """``saved`` (a state, or part of one, some of it in the layout before the scan) in the layout
  of ``like`` (the same part of today's state); what already fits, or does not match ``like``,
  is kept as it is."""
  if _is_generator(like) and isinstance(saved, dict) and resnet.BLOCKS not in saved:
    return resnet.stack_blocks(saved, _blocks(like))
  if isinstance(like, dict) and isinstance(saved, dict):
    return {key: to_current(value, like.get(key)) for key, value in saved.items()}
  children, treedef = jax.tree.flatten(like, is_leaf=lambda node: node is not like)
  if treedef.num_leaves <= 1 and children == [like]:   # a leaf
    return saved
  try:
    saved_children = treedef.flatten_up_to(saved)
  except (ValueError, TypeError):
    return saved
  return treedef.unflatten([to_current(s, c) for s, c in zip(saved_children, children)])
