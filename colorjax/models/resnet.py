"""The ResNet generator of CycleGAN (Johnson et al.'s architecture, as Zhu et al. use it).

A reflection-padded 7x7 conv, two stride-2 3x3 convs (x2, x4 the width), ``blocks`` residual
blocks of two reflection-padded 3x3 convs, two 2x up-samplings back to the input size and a
reflection-padded 7x7 conv to the output channels; each conv but the last is followed by the
norm (instance norm by default) and ReLU.

The residual blocks are one ``nn.scan`` over ``blocks`` copies of ``ResidualBlock``: XLA
compiles one block, not nine, and their parameters are stacked along a leading axis under
``residual_blocks``. ``stack_blocks``/``unstack_blocks`` convert a generator's variables from
and to the layout of runs trained before the scan (one ``Conv_i``/norm per layer), which
checkpoints are migrated from on restore.
"""
import re

import flax.linen as nn
import jax
import jax.numpy as jnp

from colorjax.models import convs, head, layers

PRESETS = {
    'resnet_9blocks': dict(width=64, blocks=9, norm='instance', upsample='transpose',
                           output_activation='tanh'),
    'resnet_6blocks': dict(width=64, blocks=6, norm='instance', upsample='transpose',
                           output_activation='tanh'),
}
DOWNSAMPLINGS = 2
BLOCKS = 'residual_blocks'     # the scanned blocks' scope
_NORMS = ('BatchNorm', 'InstanceNorm')


def _conv(x, features, kernel, train, norm, dtype, strides=1, reflect=False, act=True):
  """A conv (reflection-padded with ``reflect``), the norm and ReLU (without ``act``), in the
  calling compact module."""
  pad = kernel // 2
  conv = convs.ReflectPaddedConv if reflect else convs.Conv
  x = conv(features, (kernel, kernel), strides=(strides, strides),
           padding=((pad, pad), (pad, pad)), use_bias=norm == 'none', dtype=dtype)(x)
  x = layers.norm(norm, train, dtype)(x)
  return nn.relu(x) if act else x


class ResidualBlock(nn.Module):
  """x + conv-norm(conv-norm-ReLU(x)), both 3x3 and reflection-padded; a scan's body (carry,
  nothing) -> (carry, nothing)."""
  norm: str = 'instance'
  train: bool = False
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, _):
    width = x.shape[-1]
    y = _conv(x, width, 3, self.train, self.norm, self.dtype, reflect=True)
    return x + _conv(y, width, 3, self.train, self.norm, self.dtype, reflect=True,
                     act=False), None


class ResnetGenerator(nn.Module):
  """Images [N, H, W, C] -> ``out_channels`` maps, or [x, those] with ``join_l``."""
  width: int = 64                  # channels of the first conv (x2, x4 after each downsampling)
  blocks: int = 9
  norm: str = 'instance'
  upsample: str = 'transpose'
  out_channels: int = 2
  output_activation: str = 'tanh'
  join_l: bool = False
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train=False):
    inputs = x
    x = _conv(x.astype(self.dtype), self.width, 7, train, self.norm, self.dtype, reflect=True)
    for level in range(1, DOWNSAMPLINGS + 1):
      x = _conv(x, self.width * 2 ** level, 3, train, self.norm, self.dtype, strides=2)
    blocks = nn.scan(ResidualBlock, variable_axes={'params': 0, 'batch_stats': 0},
                     split_rngs={'params': True}, length=self.blocks)
    x, _ = blocks(self.norm, train, self.dtype, name=BLOCKS)(x, None)
    for level in reversed(range(DOWNSAMPLINGS)):
      x = layers.Upsample2x(self.width * 2 ** level, self.upsample, self.dtype)(x)
      x = nn.relu(layers.norm(self.norm, train, self.dtype)(x))
    return head.output_head(self, x, inputs, kernel=7, reflect=True)


def from_config(model_config, dtype, **fixed):
  """The generator a config names: ``model.preset`` with any ``model.FIELD`` that is set, then
  ``fixed`` (the task's head)."""
  return layers.from_preset(ResnetGenerator, PRESETS[model_config.preset], model_config,
                            dtype=dtype, **fixed)


def total_stride(model):
  del model
  return 2 ** DOWNSAMPLINGS


# Before the scan, the layers were numbered in call order: Conv_0..2 (stem, downsamplings),
# Conv_3.. two per block, then the head; norms likewise, then the two after the upsamplings.
# The scan leaves Conv_0..2, norm_0..2, BLOCKS/{Conv,norm}_{0,1}[block], Conv_3 and norm_3..4.

def _renames(tree, blocks):
  """{old name: (new name, block or None)} for one generator's collection ``tree`` (a dict
  keyed by layer names, before the scan), for ``blocks`` residual blocks."""
  names = {}
  for name in tree:
    found = re.fullmatch(r'(Conv|BatchNorm|InstanceNorm)_(\d+)', name)
    if not found:
      names[name] = (name, None)
      continue
    kind, index = found.group(1), int(found.group(2))
    first, after = DOWNSAMPLINGS + 1, DOWNSAMPLINGS + 1 + 2 * blocks
    if index < first:
      names[name] = (name, None)
    elif index < after:
      names[name] = (f'{kind}_{(index - first) % 2}', (index - first) // 2)
    else:
      names[name] = (f'{kind}_{index - 2 * blocks}', None)
  return names


def stack_blocks(tree, blocks):
  """One generator's collection (params, batch stats, or an optimiser's moments of them) in the
  layout before the scan -> the scanned layout (the blocks' layers stacked along axis 0)."""
  out, stacked = {}, {}
  for name, (new, block) in _renames(tree, blocks).items():
    if block is None:
      out[new] = tree[name]
    else:
      stacked.setdefault(new, [None] * blocks)[block] = tree[name]
  if stacked:
    out[BLOCKS] = {name: jax.tree.map(lambda *leaves: jnp.stack(leaves), *per_block)
                   for name, per_block in stacked.items()}
  return out


def unstack_blocks(tree, unstack):
  """The inverse of ``stack_blocks``: the scanned layout -> the layout before the scan; each
  stacked leaf becomes ``unstack(leaf)`` (a sequence over blocks)."""
  tree = dict(tree)
  stacked = tree.pop(BLOCKS, {})
  if not stacked:
    return tree
  blocks = len(unstack(jax.tree.leaves(stacked)[0]))
  old = {}
  for name, value in tree.items():
    found = re.fullmatch(r'(Conv|BatchNorm|InstanceNorm)_(\d+)', name)
    if found and int(found.group(2)) > DOWNSAMPLINGS:
      name = f'{found.group(1)}_{int(found.group(2)) + 2 * blocks}'
    old[name] = value
  for name, value in stacked.items():
    kind, layer = name.rsplit('_', 1)
    per_block = jax.tree.map(unstack, value)
    for block in range(blocks):
      index = DOWNSAMPLINGS + 1 + 2 * block + int(layer)
      old[f'{kind}_{index}'] = jax.tree.map(lambda leaves, b=block: leaves[b], per_block,
                                            is_leaf=lambda x: isinstance(x, (list, tuple)))
  return old
