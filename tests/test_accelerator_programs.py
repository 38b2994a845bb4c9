"""What JAX would run on a GPU or TPU, checked from this CPU machine.

Every family's jitted training step and its ``predict`` (as ``colorjax export`` writes it) are
exported with ``jax.export`` for CUDA and TPU. Their StableHLO must hold exactly the
convolutions and matmuls of the same network built from Flax's own layers (``nn.Conv``,
``nn.ConvTranspose``, padding='REFLECT', ``jnp.concatenate``): none of XLA:CPU's rewrites in
``colorjax.models.cpu_convs``. Under ``compute_dtype='bfloat16'`` every convolution takes bf16
operands; the training step donates its state; nothing calls back to the host.
"""
import collections
import functools
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from colorjax import tasks
from colorjax.core import parallel
from colorjax.inference import artifact
from colorjax.models import convs
from colorjax.training import train
from conftest import FAMILIES, family_config

ACCELERATORS = ('cuda', 'tpu')
def _plain_reflect_conv(features, kernel_size, padding, **options):
  del padding   # ((k // 2, k // 2),) * 2 by construction
  return nn.Conv(features, kernel_size, padding='REFLECT', **options)


def _plain_conv_transpose(features, **options):
  return nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding='SAME', **options)


def use_flax_layers(patch):
  """colorjax's networks rebuilt from Flax's own layers (``patch``: a monkeypatch context), as
  the reference program."""
  patch.setattr(convs, 'Conv', nn.Conv)
  patch.setattr(convs, 'ReflectPaddedConv', _plain_reflect_conv)
  patch.setattr(convs, 'ConvTranspose2x', _plain_conv_transpose)
  patch.setattr(convs, 'concat_channels', functools.partial(jnp.concatenate, axis=-1))


def _state_shapes(config):
  task = tasks.get(config.task)
  shape = (config.image_size, config.image_size)
  return task, jax.eval_shape(lambda r: task.init(r, config, shape), jax.random.PRNGKey(0))


def exported_step(config, platforms=ACCELERATORS):
  """The training step as train.py jits it, exported for ``platforms``, and the state's leaf
  count."""
  task, state = _state_shapes(config)
  names = ('a', 'b') if config.data.pairing == 'unpaired' else ('rgb',)
  batch = {n: jax.ShapeDtypeStruct((config.batch_size, config.image_size, config.image_size, 3),
                                   jnp.uint8) for n in names}
  step = train.jitted_train_step(task, config, parallel.make_mesh())
  return jax.export.export(step, platforms=platforms)(state, batch), len(jax.tree.leaves(state))


def exported_predict(config, platforms=ACCELERATORS):
  task, state = _state_shapes(config)
  return artifact.export_predict(task, state, config.image_size, platforms)


_NAMES = re.compile(r'%[\w#.:-]+| loc\(#loc\d*\)')


def ops(exported, name):
  """Each ``stablehlo.NAME`` op of the module, without its value names and location, sorted."""
  return sorted(_NAMES.sub('', line.strip()) for line in exported.mlir_module().splitlines()
                if f'stablehlo.{name}' in line)


@pytest.mark.parametrize('name', FAMILIES)
def test_accelerator_training_step_has_the_plain_networks_ops(name, monkeypatch):
  config = family_config(name)
  ours, state_leaves = exported_step(config)
  with monkeypatch.context() as patch:
    use_flax_layers(patch)
    theirs, _ = exported_step(config)
  assert ops(ours, 'convolution') == ops(theirs, 'convolution')
  assert len(ops(ours, 'dot_general')) == len(ops(theirs, 'dot_general'))
  text = ours.mlir_module()
  assert 'callback' not in text
  main = next(line for line in text.splitlines() if 'func.func public @main' in line)
  arguments = [a for a in main.split('%arg')[1:] if 'jax.global_constant' not in a]
  donated = ['tf.aliasing_output' in a or 'jax.buffer_donor' in a for a in arguments]
  assert donated == [True] * state_leaves + [False] * (len(arguments) - state_leaves)


@pytest.mark.parametrize('name', FAMILIES)
def test_accelerator_predict_has_the_plain_networks_ops(name, monkeypatch):
  config = family_config(name)
  ours = exported_predict(config)
  with monkeypatch.context() as patch:
    use_flax_layers(patch)
    theirs = exported_predict(config)
  assert ops(ours, 'convolution') == ops(theirs, 'convolution')
  assert len(ops(ours, 'dot_general')) == len(ops(theirs, 'dot_general'))
  assert 'callback' not in ours.mlir_module()


@pytest.mark.parametrize('name', FAMILIES)
def test_bfloat16_accelerator_network_convolutions_take_bf16(name):
  """Every NHWC convolution (the networks'; the SSIM loss filters float32 images in 1-D)."""
  exported, _ = exported_step(family_config(name, 'bfloat16'))
  operands = [re.search(r': \((tensor<[^>]*>), (tensor<[^>]*>)\)', op).groups()
              for op in ops(exported, 'convolution')]
  network = [pair for pair in operands if pair[0].count('x') == 4]
  assert network and all(t.endswith('xbf16>') for pair in network for t in pair), network


def test_one_exported_file_holds_each_platforms_own_predict():
  """``colorjax export``'s CPU + CUDA + TPU program: the plain convolutions for CUDA and TPU,
  and beside them the CPU's forms (the U-Net's 1x1 output head and innermost convs as matmuls
  of their patches), chosen by the platform index when the file is loaded."""
  config = family_config('unet')
  every = exported_predict(config, artifact.PLATFORMS)
  plain = exported_predict(config)
  assert every.platforms == ('cpu', 'cuda', 'tpu')
  assert 'jax.global_constant = "_platform_index"' in every.mlir_module()
  for name in ('convolution', 'dot_general'):
    theirs = collections.Counter(ops(plain, name))
    ours = collections.Counter(ops(every, name))
    assert not theirs - ours and ours - theirs   # all of CUDA's, and the CPU's own
