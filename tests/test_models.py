"""U-Net presets and building blocks."""
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorjax.models import convs, cpu_convs, fusion, layers, pixels, resnet, unet, vgg_gan
from conftest import ROOT, cpu_devices_env
from test_accelerator_programs import ops


def shapes(model, size, batch=2):
  variables = jax.eval_shape(lambda: model.init(
      {'params': jax.random.PRNGKey(0), 'dropout': jax.random.PRNGKey(1)},
      jnp.zeros((1, size, size, 1)), train=False))
  count = sum(np.prod(x.shape) for x in jax.tree.leaves(variables['params']))
  out = jax.eval_shape(lambda v: model.apply(v, jnp.zeros((batch, size, size, 1))), variables)
  return variables, count, out.shape


def test_portrait_unet_goes_down_to_8x8x512_and_joins_l():
  model = unet.UNet(**unet.PRESETS['portrait'])
  variables, _, out = shapes(model, 128)
  assert out == (2, 128, 128, 3)
  bottom = jax.eval_shape(lambda v: model.apply(
      v, jnp.zeros((1, 128, 128, 1)), capture_intermediates=True)[1], variables)
  widths = {x.shape[1:] for x in jax.tree.leaves(bottom) if x.ndim == 4}
  assert (8, 8, 512) in widths and not any(s[0] < 8 for s in widths)


def test_pix2pix_unet_256_has_the_reference_size():
  _, count, out = shapes(unet.UNet(**unet.PRESETS['pix2pix']), 256)
  assert out == (2, 256, 256, 2)
  assert 54.0e6 < count < 55.0e6  # pix2pix's unet_256 has 54.4M parameters


# network: (a thin one, its last conv: the output head's, (its kernel's shape))
HEADS = {
    'unet': (unet.UNet(features=(4, 8)), 'Conv_8', (1, 1, 4, 2)),
    'fusion': (fusion.Fusion(encoder=((4, 2), (8, 2)), downsample='maxpool', fusion_features=8,
                             decoder=((4, 1),)), 'Conv_4', (1, 1, 4, 2)),
    'vgg': (vgg_gan.VGGGenerator(features=(4, 4, 8, 8, 8), convs_per_block=1), 'Conv_5',
            (1, 1, 4, 2)),
    'resnet': (resnet.ResnetGenerator(width=4, blocks=1), 'Conv_3', (7, 7, 4, 2)),
}


@pytest.mark.parametrize('name', HEADS)
def test_the_output_head_conv_is_named_in_the_networks_own_scope(name):
  """The shared head adds no scope of its own: its conv keeps the name it had in each network
  (checkpoints, and the Keras and PyTorch comparisons, find params by name)."""
  model, conv, kernel = HEADS[name]
  variables, _, out = shapes(model, 32)
  params = variables['params']
  assert {k: v.shape for k, v in params[conv].items()} == {'kernel': kernel, 'bias': kernel[-1:]}
  assert max((k for k in params if k.startswith('Conv_')), key=lambda k: int(k[5:])) == conv
  assert out == (2, 32, 32, 2)
  assert shapes(model.clone(out_channels=1, join_l=True), 32)[2] == (2, 32, 32, 2)


@pytest.mark.parametrize('upsample', layers.UPSAMPLES)
@pytest.mark.parametrize('norm', layers.NORMS)
def test_every_variant_runs_and_respects_its_output_range(upsample, norm):
  model = unet.UNet(features=(4, 8), upsample=upsample, norm=norm, output_activation='sigmoid')
  L = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 1)), jnp.float32)
  variables = model.init(jax.random.PRNGKey(0), L)
  out, _ = model.apply(variables, L, train=True, mutable=['batch_stats'])
  assert out.shape == (2, 16, 16, 2)
  assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_depth_to_space_against_numpy():
  x = np.arange(2 * 3 * 4 * 8).reshape(2, 3, 4, 8).astype(np.float32)
  got = np.asarray(pixels.depth_to_space(jnp.asarray(x)))
  want = np.zeros((2, 6, 8, 2), np.float32)
  for i in range(2):
    for j in range(2):
      want[:, i::2, j::2, :] = x[..., (2 * i + j) * 2:(2 * i + j + 1) * 2]
  np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize('shapes', [[(2, 3, 4, 5)] * 2, [(2, 3, 4, 5)] * 4,
                                    [(2, 3, 4, 5), (2, 3, 4, 2)], [(2, 3, 4, 5)],
                                    [(2, 0, 0, 3)] * 2])
def test_concat_channels_is_numpy_concatenate_with_its_gradient(shapes):
  rng = np.random.default_rng(0)
  parts = [rng.normal(size=s).astype(np.float32) for s in shapes]
  got = convs.concat_channels([jnp.asarray(p) for p in parts])
  np.testing.assert_array_equal(np.asarray(got), np.concatenate(parts, axis=-1))
  weight = rng.normal(size=got.shape).astype(np.float32)
  grads = jax.grad(lambda ps: jnp.sum(convs.concat_channels(ps) * weight))(
      [jnp.asarray(p) for p in parts])
  for grad, want in zip(grads, np.split(weight, np.cumsum([s[-1] for s in shapes])[:-1], -1)):
    np.testing.assert_array_equal(np.asarray(grad), want)


def cpu_program(function, *args):
  """The StableHLO of ``function`` lowered for the CPU (its CPU convs, not the plain ops)."""
  return jax.jit(function).lower(*args).as_text()


def assert_same_function(ours, theirs, params, x, cotangent, tolerance=1e-5):
  """ours(params, x) equals theirs(params, x) within ``tolerance``, and so do (within 1e-4)
  the gradients of sum(y * cotangent) for the params and the input."""
  np.testing.assert_allclose(ours(params, x), theirs(params, x), rtol=tolerance, atol=tolerance)
  grads = [jax.grad(lambda v, x: jnp.sum(f(v, x).astype(jnp.float32) * cotangent),
                    argnums=(0, 1))(params, x) for f in (ours, theirs)]
  for got, want in zip(*map(jax.tree.leaves, grads)):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.fixture
def no_matmul_convs(monkeypatch):
  """Small test shapes take XLA's conv paths, not the matmul of their patches."""
  monkeypatch.setattr(cpu_convs, 'MATMUL_CONV_ROWS', 0)
  monkeypatch.setattr(cpu_convs, 'WIDE_MATMUL_ROWS_PER_FEATURE', 0)


@pytest.mark.parametrize('matmul_rows, transpose_second_rows, winograd', [
    (0, 0, False), (0, 10 ** 6, False), (128, 0, False), (128, 10 ** 6, False), (0, 0, True)])
@pytest.mark.parametrize('shape', [(2, 5, 7, 3), (1, 8, 8, 16)])
def test_conv_transpose_2x_is_flax_conv_transpose_with_the_same_params(
    monkeypatch, shape, matmul_rows, transpose_second_rows, winograd):
  """Same initial params, outputs and gradients (input and params) as nn.ConvTranspose(4, 2),
  with the stacked phase conv as a conv, as a matmul of its patches, or as a Winograd conv
  (here from any channels and rows), and its weight gradient one matmul with either operand
  transposed or the Winograd conv's (no conv for it)."""
  monkeypatch.setattr(cpu_convs, 'MATMUL_CONV_ROWS', matmul_rows)
  monkeypatch.setattr(cpu_convs, 'TRANSPOSE_SECOND_ROWS', transpose_second_rows)
  if winograd:
    monkeypatch.setattr(cpu_convs, 'WINOGRAD_CHANNELS', 1)
    monkeypatch.setattr(cpu_convs, 'WINOGRAD_2X2_ROWS', 1)
  x = jax.random.normal(jax.random.PRNGKey(1), shape)
  ours = convs.ConvTranspose2x(6)
  theirs = nn.ConvTranspose(6, (4, 4), strides=(2, 2), padding='SAME')
  params = ours.init(jax.random.PRNGKey(0), x)
  assert jax.tree.all(jax.tree.map(np.array_equal, params, theirs.init(jax.random.PRNGKey(0), x)))
  params = jax.tree.map(lambda p: p + jax.random.normal(jax.random.PRNGKey(2), p.shape), params)
  cotangent = jax.random.normal(jax.random.PRNGKey(3), (shape[0], 2 * shape[1], 2 * shape[2], 6))
  assert_same_function(ours.apply, theirs.apply, params, x, cotangent)
  kernel_gradient = jax.jit(jax.grad(lambda v: jnp.sum(jnp.sin(ours.apply(v, x)))))
  hlo = kernel_gradient.lower(params).compile().as_text()
  assert hlo.count(' convolution(') == (matmul_rows == 0 and not winograd)  # the forward's


def _accelerator_ops(layer, x):
  """The convolution and the dot_general ops (``ops``) of ``layer``'s forward and gradients,
  exported for CUDA and TPU."""
  params = jax.eval_shape(layer.init, jax.random.PRNGKey(0), x)
  loss = lambda v, x: jnp.sum(jnp.sin(layer.apply(v, x)))
  exported = jax.export.export(jax.jit(jax.grad(loss, argnums=(0, 1))),
                               platforms=('cuda', 'tpu'))(params, x)
  return ops(exported, 'convolution'), ops(exported, 'dot_general')


@pytest.mark.parametrize('ours, theirs, shape', [
    (convs.Conv(4, (1, 1)), nn.Conv(4, (1, 1)), (2, 8, 8, 3)),
    (convs.Conv(2, (3, 3)), nn.Conv(2, (3, 3)), (2, 8, 8, 300)),
    (convs.Conv(6, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1))),
     nn.Conv(6, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1))), (2, 32, 32, 130)),
    (convs.ReflectPaddedConv(4, (7, 7), padding=((3, 3), (3, 3))),
     nn.Conv(4, (7, 7), padding='REFLECT'), (2, 8, 8, 3)),
    (convs.ConvTranspose2x(6), nn.ConvTranspose(6, (4, 4), strides=(2, 2), padding='SAME'),
     (2, 16, 16, 256))])
def test_layers_off_the_cpu_are_flaxs_own_ops(ours, theirs, shape):
  """Lowered for CUDA and TPU, each layer's forward and gradients hold exactly the convolutions
  and matmuls of the Flax layer with its parameters (the CPU forms only where lowered for the
  CPU: here matmuls of patches, Winograd and the stacked phase conv)."""
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  assert _accelerator_ops(ours, x) == _accelerator_ops(theirs, x)


@pytest.mark.parametrize('size', [32, 33, 30])
@pytest.mark.usefixtures('no_matmul_convs')
def test_strided_4x4_conv_takes_its_input_gradient_by_space_to_depth(size):
  """A 4x4 stride-2 conv padded by one, on an even input from 32², has the input gradient of
  the 2x2 stride-1 conv of its space-to-depth input (a custom gradient); outputs and both
  gradients stay nn.Conv's. Odd and smaller inputs keep XLA's."""
  x = jax.random.normal(jax.random.PRNGKey(1), (1, size, size, 3))
  ours = convs.Conv(5, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))
  theirs = nn.Conv(5, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))
  params = ours.init(jax.random.PRNGKey(0), x)
  params = jax.tree.map(lambda p: p + jax.random.normal(jax.random.PRNGKey(2), p.shape), params)
  cotangent = jax.random.normal(jax.random.PRNGKey(3), theirs.apply(params, x).shape)
  assert_same_function(ours.apply, theirs.apply, params, x, cotangent)
  assert ('custom_vjp' in str(jax.make_jaxpr(ours.apply)(params, x))) == (size == 32)


@pytest.mark.parametrize('shape, winograd', [
    ((2, 32, 32, 128), True),     # 4 x 128 inputs to 2 x 16² outputs
    ((2, 32, 34, 128), True),     # 2 x 16 x 17 outputs: the last tiles half outside
    ((1, 32, 32, 128), False),    # 16² outputs: too few rows
    ((2, 32, 32, 127), False),    # 127 inputs: too few channels
    ((2, 33, 33, 128), False)])   # odd: no space-to-depth
@pytest.mark.usefixtures('no_matmul_convs')
def test_strided_4x4_conv_from_many_channels_is_a_winograd_conv_of_its_space_to_depth(shape,
                                                                                   winograd):
  """A 4x4 stride-2 conv padded by one from at least SPACE_TO_DEPTH_WINOGRAD_CHANNELS inputs
  whose space-to-depth form is a 2x2 conv to at least WINOGRAD_2X2_ROWS outputs is that
  Winograd conv, with no conv left in its gradients; outputs and gradients stay nn.Conv's."""
  x = jax.random.normal(jax.random.PRNGKey(1), shape)
  options = dict(kernel_size=(4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))
  ours, theirs = convs.Conv(8, **options), nn.Conv(8, **options)
  params = ours.init(jax.random.PRNGKey(0), x)
  cotangent = jax.random.normal(jax.random.PRNGKey(3), theirs.apply(params, x).shape)
  assert ('name=_winograd_conv' in str(jax.make_jaxpr(ours.apply)(params, x))) == winograd
  assert (conv_count(ours.apply, params, x) == 0) == winograd
  # float32 sums of 16 x 128 products of unit-scale terms
  assert_same_function(ours.apply, theirs.apply, params, x, cotangent, tolerance=1e-4)


@pytest.mark.parametrize('kernel, padding, channels, features', [
    (7, 'VALID', 8, 2), (4, 'SAME', 6, 1), (1, 'SAME', 5, 3), (1, 'VALID', 6, 9),
    (3, ((2, 0), (1, 3)), 4, 4), (3, 'SAME', 4, 5)])
@pytest.mark.usefixtures('no_matmul_convs')
def test_output_conv_is_nn_conv_with_the_same_params(kernel, padding, channels, features):
  """Outputs and gradients of nn.Conv; on the CPU a 1x1 conv is one matmul (no conv at all),
  the weight gradient of a larger one the one-matmul form for up to FEW_CHANNELS outputs, and
  nn.Conv's own beyond."""
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 11, 9, channels))
  ours = convs.Conv(features, (kernel, kernel), padding=padding)
  theirs = nn.Conv(features, (kernel, kernel), padding=padding)
  params = ours.init(jax.random.PRNGKey(0), x)
  params = jax.tree.map(lambda p: p + jax.random.normal(jax.random.PRNGKey(2), p.shape), params)
  cotangent = jax.random.normal(jax.random.PRNGKey(3), theirs.apply(params, x).shape)
  jaxpr = str(jax.make_jaxpr(ours.apply)(params, x))
  assert ('name=_few_outputs_conv' in jaxpr) == (features <= cpu_convs.FEW_CHANNELS and kernel > 1)
  assert ('stablehlo.convolution' in cpu_program(ours.apply, params, x)) == (kernel > 1)
  assert_same_function(ours.apply, theirs.apply, params, x, cotangent)


@pytest.mark.parametrize('kernel, shape, padding, dtype, winograd', [
    (2, (2, 16, 16, 256), 'SAME', jnp.float32, True),               # 512 rows: ((0, 1), (0, 1))
    (2, (2, 17, 17, 256), 'VALID', jnp.float32, True),
    (2, (1, 16, 16, 256), 'SAME', jnp.float32, False),              # 256 rows: too few
    (2, (2, 16, 16, 255), 'SAME', jnp.float32, False),
    (3, (2, 5, 7, 256), 'SAME', jnp.float32, True),
    (3, (1, 6, 4, 300), ((1, 1), (1, 1)), jnp.float32, True),
    (3, (1, 5, 5, 255), 'SAME', jnp.float32, False),
    (3, (1, 4, 4, 256), 'SAME', jnp.bfloat16, False),
    (4, (2, 7, 6, 256), ((1, 1), (1, 1)), jnp.float32, True),      # the PatchGAN's
    (4, (1, 5, 8, 256), 'SAME', jnp.float32, True),                 # (1, 2) on both axes
    (4, (1, 6, 6, 256), 'VALID', jnp.float32, True),
    (4, (1, 6, 6, 256), ((0, 1), (1, 1)), jnp.float32, False),      # unlike on the two axes
    (4, (1, 6, 6, 256), ((4, 0), (4, 0)), jnp.float32, False)])     # more than the kernel
@pytest.mark.usefixtures('no_matmul_convs')
def test_wide_2x2_3x3_and_4x4_convs_are_nn_conv_with_the_same_params(kernel, shape, padding,
                                                                     dtype, winograd):
  """Outputs and gradients of nn.Conv; on the CPU, Winograd (forward, input and weight
  gradients: no conv left) from WINOGRAD_CHANNELS float32 inputs on (odd sizes included) with
  the same padding on both axes, less than the kernel, for a 2x2 kernel to at least
  WINOGRAD_2X2_ROWS output pixels; XLA's own conv otherwise."""
  x = jax.random.normal(jax.random.PRNGKey(1), shape)
  ours = convs.Conv(8, (kernel, kernel), padding=padding, dtype=dtype)
  theirs = nn.Conv(8, (kernel, kernel), padding=padding, dtype=dtype)
  params = ours.init(jax.random.PRNGKey(0), x)
  cotangent = jax.random.normal(jax.random.PRNGKey(3), theirs.apply(params, x).shape)
  assert ('custom_vjp' in str(jax.make_jaxpr(ours.apply)(params, x))) == winograd
  assert (conv_count(ours.apply, params, x) == 0) == winograd   # its gradients too
  assert_same_function(ours.apply, theirs.apply, params, x, cotangent,
                       tolerance=1e-5 if dtype == jnp.float32 else 1e-2)


@pytest.mark.parametrize('kernel, strides, padding, shape, features, matmul', [
    (4, 2, ((1, 1), (1, 1)), (2, 8, 6, 5), 6, True),     # a U-Net's inner level: 2 x 4 x 3 rows
    (4, 2, ((1, 1), (1, 1)), (1, 2, 2, 8), 6, True),     # its innermost: one output pixel
    (2, 1, ((1, 0), (0, 1)), (2, 3, 5, 4), 6, True),     # a transposed conv's phase
    (3, 1, 'SAME', (2, 8, 8, 3), 6, True),               # 128 rows, the most a matmul takes
    (3, 1, 'SAME', (3, 8, 8, 3), 6, False),              # 192 rows: XLA's conv
    (3, 1, ((-1, 2), (1, 1)), (1, 6, 5, 3), 6, False),   # negative padding: XLA's conv
    (3, 2, 'SAME', (1, 24, 24, 256), 36, True),          # 144 rows from 256 channels: 4 per output
    (3, 2, 'SAME', (1, 24, 24, 256), 35, False),         # 144 rows for 35 outputs: XLA's conv
    (3, 2, 'SAME', (1, 24, 24, 255), 36, False),         # from 255 channels: XLA's conv
    (3, 1, 'SAME', (1, 12, 12, 256), 36, False)])        # 144 rows, stride-1 3x3: Winograd
@pytest.mark.parametrize('transpose_second_rows', [0, 10 ** 6])
def test_small_convs_are_one_matmul_of_their_patches(monkeypatch, kernel, strides, padding, shape,
                                                     features, matmul, transpose_second_rows):
  """Up to MATMUL_CONV_ROWS output pixels per device, or from WIDE_MATMUL_CHANNELS inputs up to
  WIDE_MATMUL_ROWS_PER_FEATURE per output channel where no Winograd conv takes it, a conv runs
  no conv at all, one matmul of its patches, with its weight gradient one matmul with either
  operand transposed; outputs and gradients are nn.Conv's."""
  monkeypatch.setattr(cpu_convs, 'TRANSPOSE_SECOND_ROWS', transpose_second_rows)
  matmuls, matmul_conv = [], cpu_convs._matmul_conv
  monkeypatch.setattr(cpu_convs, '_matmul_conv',
                      lambda *args: matmuls.append(args) or matmul_conv(*args))
  x = jax.random.normal(jax.random.PRNGKey(1), shape)
  options = dict(kernel_size=(kernel, kernel), strides=(strides, strides), padding=padding)
  ours, theirs = convs.Conv(features, **options), nn.Conv(features, **options)
  params = ours.init(jax.random.PRNGKey(0), x)
  params = jax.tree.map(lambda p: p + jax.random.normal(jax.random.PRNGKey(2), p.shape), params)
  cotangent = jax.random.normal(jax.random.PRNGKey(3), theirs.apply(params, x).shape)
  gradient = jax.grad(lambda v, x: jnp.sum(ours.apply(v, x)), argnums=(0, 1))
  assert bool(matmuls) == matmul
  if matmul:                                           # and no conv left in its gradient
    assert 'stablehlo.convolution' not in cpu_program(gradient, params, x)
  # float32 sums of up to 9 x 256 products of unit-scale terms
  assert_same_function(ours.apply, theirs.apply, params, x, cotangent, tolerance=1e-4)


@pytest.mark.parametrize('kernel, shape, features', [(3, (2, 9, 12, 5), 8), (7, (1, 10, 8, 3), 2),
                                                     (7, (1, 4, 5, 2), 4), (3, (1, 5, 6, 256), 8)])
@pytest.mark.usefixtures('no_matmul_convs')
def test_reflect_padded_conv_is_a_conv_of_the_reflection_padded_input(kernel, shape, features):
  """Outputs and gradients of jnp.pad(mode='reflect') then a VALID nn.Conv, same params; with
  few outputs (an output head), its convs take the one-matmul weight gradient, and a wide 3x3
  conv is a Winograd conv."""
  x = jax.random.normal(jax.random.PRNGKey(1), shape)
  pad = kernel // 2
  ours = convs.ReflectPaddedConv(features, (kernel, kernel), padding=((pad, pad), (pad, pad)))
  theirs = nn.Conv(features, (kernel, kernel), padding='VALID')
  params = ours.init(jax.random.PRNGKey(0), x)
  params = jax.tree.map(lambda p: p + jax.random.normal(jax.random.PRNGKey(2), p.shape), params)
  cotangent = jax.random.normal(jax.random.PRNGKey(3), shape[:3] + (features,))
  padded = lambda v, x: theirs.apply(v, pixels.reflect_pad(x, pad))
  custom = 'custom_vjp' in str(jax.make_jaxpr(ours.apply)(params, x))
  assert custom == (features <= cpu_convs.FEW_CHANNELS or shape[-1] >= cpu_convs.WINOGRAD_CHANNELS)
  assert_same_function(ours.apply, padded, params, x, cotangent, tolerance=1e-4)


class ResidualChain(nn.Module):
  """Residual blocks of one reflection-padded 3x3 conv each, as in the CycleGAN generator:
  ``convs.ReflectPaddedConv`` (``ours``) or jnp.pad(mode='reflect') then a VALID nn.Conv."""
  ours: bool
  blocks: int = 6

  @nn.compact
  def __call__(self, x):
    for _ in range(self.blocks):
      if self.ours:
        y = convs.ReflectPaddedConv(x.shape[-1], (3, 3), padding=((1, 1), (1, 1)))(x)
      else:
        y = nn.Conv(x.shape[-1], (3, 3), padding='VALID')(pixels.reflect_pad(x, 1))
      x = x + jax.nn.relu(y)
    return x


@pytest.mark.usefixtures('no_matmul_convs')
def test_winograd_convs_keep_no_input_tiles_from_forward_to_backward():
  """What each further Winograd residual block adds to the XLA temporary memory of the chain's
  gradient is within one input of what a block of reflection padding then nn.Conv adds (which
  keeps the block's padded input). The forward's input tiles, 4 inputs, must not be kept for
  the weight gradient: with them, 5.2 inputs against 2.1."""
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 64, 64, cpu_convs.WINOGRAD_CHANNELS))

  def temp_bytes(ours, blocks):
    model = ResidualChain(ours, blocks)
    params = model.init(jax.random.PRNGKey(0), x)
    grad = jax.jit(jax.grad(lambda v, x: jnp.sum(model.apply(v, x) ** 2)))
    return grad.lower(params, x).compile().memory_analysis().temp_size_in_bytes

  per_block = {ours: (temp_bytes(ours, 6) - temp_bytes(ours, 3)) / 3 / x.nbytes
               for ours in (True, False)}
  assert per_block[True] < per_block[False] + 1, per_block


def conv_count(apply, params, x):
  """How many convolutions the gradient of ``apply`` for its params and input runs on the CPU."""
  grad = jax.grad(lambda v, x: jnp.sum(apply(v, x)), argnums=(0, 1))
  return cpu_program(grad, params, x).count('stablehlo.convolution')


@pytest.mark.parametrize('ours, theirs, shape, grouped', [
    (convs.Conv(6, (4, 4), strides=(2, 2)), nn.Conv(6, (4, 4), strides=(2, 2)), (4, 8, 6, 3), 1),
    (convs.Conv(6, (3, 3)), nn.Conv(6, (3, 3)), (4, 5, 7, 3), 1),
    (convs.ConvTranspose2x(6), nn.ConvTranspose(6, (4, 4), strides=(2, 2)), (4, 3, 5, 7), 0),
    (convs.ReflectPaddedConv(6, (3, 3), padding=((1, 1), (1, 1))), None, (4, 6, 5, 3), 1)])
@pytest.mark.usefixtures('no_matmul_convs')
def test_gradients_by_image_group_are_those_of_the_whole_batch(monkeypatch, ours, theirs, shape,
                                                               grouped):
  """With the pixel thresholds at one pixel, the batch's convs take their gradients in two
  groups of two images (more convs in the CPU gradient than with MAX_IMAGE_GROUPS = 1; not
  the transposed conv, whose weight gradient is a matmul and input gradient a stride-1 conv's),
  and outputs and gradients stay nn.Conv's (nn.ConvTranspose's; a reflection-padded input's)."""
  monkeypatch.setattr(cpu_convs, 'GROUPED_KERNEL_GRADIENT_PIXELS', 1)
  monkeypatch.setattr(cpu_convs, 'GROUPED_INPUT_GRADIENT_PIXELS', 1)
  monkeypatch.setattr(cpu_convs, 'MAX_IMAGE_GROUPS', 2)
  x = jax.random.normal(jax.random.PRNGKey(1), shape)
  params = ours.init(jax.random.PRNGKey(0), x)
  params = jax.tree.map(lambda p: p + jax.random.normal(jax.random.PRNGKey(2), p.shape), params)
  if theirs is None:
    theirs = nn.Conv(6, (3, 3), padding='VALID')
    reference = lambda v, x: theirs.apply(v, pixels.reflect_pad(x, 1))
  else:
    reference = theirs.apply
  convolutions = conv_count(ours.apply, params, x)
  monkeypatch.setattr(cpu_convs, 'MAX_IMAGE_GROUPS', 1)
  assert convolutions - conv_count(ours.apply, params, x) >= grouped
  monkeypatch.setattr(cpu_convs, 'MAX_IMAGE_GROUPS', 2)
  cotangent = jax.random.normal(jax.random.PRNGKey(3), reference(params, x).shape)
  assert_same_function(ours.apply, reference, params, x, cotangent, tolerance=1e-4)


GROUPS_ON_EIGHT_DEVICES = """
import flax.linen as nn, jax, jax.numpy as jnp, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
from colorjax.core import parallel
from colorjax.models import convs, cpu_convs
cpu_convs.GROUPED_KERNEL_GRADIENT_PIXELS = cpu_convs.GROUPED_INPUT_GRADIENT_PIXELS = 1
cpu_convs.MATMUL_CONV_ROWS = cpu_convs.TRANSPOSE_SECOND_ROWS = cpu_convs.WIDE_MATMUL_ROWS_PER_FEATURE = 0
batch = NamedSharding(parallel.make_mesh(), P('data'))
x = jax.device_put(jax.random.normal(jax.random.PRNGKey(0), {shape}), batch)
ours, theirs = convs.{conv}, nn.{theirs}
params = ours.init(jax.random.PRNGKey(1), x)
gradient = lambda conv: jax.grad(lambda v, x: jnp.sum(jnp.sin(conv.apply(v, x))), argnums=(0, 1))
grouped = jax.jit(gradient(ours), out_shardings=(None, batch))
hlo = grouped.lower(params, x).compile().as_text()
print(cpu_convs._image_groups(32), hlo.count(' convolution('))
want = jax.jit(gradient(theirs))(params, np.asarray(x))
for got, ref in zip(jax.tree.leaves(grouped(params, x)), jax.tree.leaves(want)):
  np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-4, atol=1e-4)
"""


@pytest.mark.parametrize('conv, theirs, shape, convolutions', [
    ('Conv(5, (4, 4), strides=(2, 2))', None, (32, 8, 8, 3), 17),
    ('Conv(5, (3, 3))', None, (32, 6, 6, 256), 0),     # Winograd: batched matmuls, no conv
    ('ConvTranspose2x(5)', "ConvTranspose(5, (4, 4), strides=(2, 2), padding='SAME')",
     (32, 4, 4, 3), 2)])                               # the stacked conv and its input gradient
def test_image_groups_on_eight_devices_give_the_whole_batchs_gradients(conv, theirs, shape,
                                                                       convolutions):
  """Batch 32 sharded over 8 devices: the groups are the traced batch's, 8 of them (a 4x4
  stride-2 conv: a forward, 8 input and 8 kernel gradient convs), whatever the device count,
  and the sharded gradients are nn.Conv's. So are a Winograd conv's, whose weight gradient
  sums over tiles of every image, and a transposed conv's, whose weight gradient is one matmul
  over the rows of every image."""
  script = GROUPS_ON_EIGHT_DEVICES.format(conv=conv, theirs=theirs or conv, shape=shape)
  result = subprocess.run([sys.executable, '-c', script], cwd=ROOT, env=cpu_devices_env(8),
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.split('\n')[-2] == f'8 {convolutions}'


def test_bfloat16_compute_keeps_float32_params_and_output():
  model = unet.UNet(features=(4, 8), dtype=jnp.bfloat16)
  L = jnp.zeros((1, 16, 16, 1))
  variables = model.init(jax.random.PRNGKey(0), L)
  assert {x.dtype for x in jax.tree.leaves(variables['params'])} == {jnp.dtype('float32')}
  assert model.apply(variables, L).dtype == jnp.float32
