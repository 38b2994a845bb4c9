"""Nested dicts of arrays (params, batch stats) merged by path."""
import jax


class Misfit(ValueError):
  """A leaf ``overlay`` cannot fill: at ``where`` ('a/b/c') the source has ``found`` (a shape,
  or None: no value) where the tree has a leaf of shape ``expected``."""

  def __init__(self, where, found, expected):
    super().__init__(f'{where}: {found} for {expected}')
    self.where, self.found, self.expected = where, found, expected


def overlay(tree, source, complete=False):
  """``tree`` with every leaf that ``source`` (nested dicts) holds at the same path replaced by
  that value, cast to the leaf's dtype; ``source`` may hold more, and the leaves it lacks stay
  (``complete``: it must have them all). Misfit names the first leaf of another shape, or the
  first one missing when ``complete``."""
  def take(path, leaf):
    value = source
    for key in path:
      value = value.get(key.key) if isinstance(value, dict) else None
    if value is None and not complete:
      return leaf
    if value is None or tuple(value.shape) != tuple(leaf.shape):
      raise Misfit('/'.join(str(key.key) for key in path),
                   None if value is None else tuple(value.shape), tuple(leaf.shape))
    return value.astype(leaf.dtype)
  return jax.tree_util.tree_map_with_path(take, tree)
