"""XLA:CPU-only: colorjax's convolutions in the forms XLA's CPU backend runs fastest.

``colorjax.models.convs`` chooses these where a program is lowered for the CPU and the plain
``lax`` ops everywhere else; nothing else calls them. Each has ``nn.Conv`` /
``nn.ConvTranspose``'s parameters and the same outputs and gradients: the 4x4 stride-2
transposed conv as one stride-1 conv to its four output phases, convs to few output pixels as
one matmul of their patches, output heads with a one-matmul weight gradient, wide 3x3 and 4x4
convs and their gradients by Winograd, reflection-padded convs that pad inside the conv, the
input gradient of 4x4 stride-2 convs by space-to-depth, and the gradients of a batch's large
convs taken image group by image group. Their thresholds are shapes only (the batch as the
program sees it), and what each form measured is in docs/benchmarks.md.
"""
import functools

import jax
import jax.numpy as jnp

from colorjax.models.pixels import depth_to_space, reflect_pad, space_to_depth


def concat_channels(parts):
  """``jnp.concatenate(parts, axis=-1)``.

  Parts of one shape are stacked on a new second-to-last axis and merged with the last,
  which XLA:CPU writes faster than a minor-axis concatenate.
  """
  if len(parts) == 1 or len({p.shape for p in parts}) > 1:
    return jnp.concatenate(parts, axis=-1)
  *rest, channels = parts[0].shape
  return jnp.stack(parts, axis=-2).reshape(*rest, len(parts) * channels)



FEW_CHANNELS = 4
WINOGRAD_CHANNELS = 256
WINOGRAD_2X2_ROWS = 512
# Inputs from which a 4x4 stride-2 conv is the Winograd conv of its space-to-depth form.
SPACE_TO_DEPTH_WINOGRAD_CHANNELS = 128
# Output pixels per image from which a conv's gradient is taken by image group: the weight
# gradient of any conv, the input gradient of a strided one (_image_groups_for).
GROUPED_KERNEL_GRADIENT_PIXELS = 30 * 30
GROUPED_INPUT_GRADIENT_PIXELS = 16 * 16
MAX_IMAGE_GROUPS = 8
MATMUL_CONV_ROWS = 128
WIDE_MATMUL_CHANNELS = 256
WIDE_MATMUL_ROWS_PER_FEATURE = 4
_NHWC = ('NHWC', 'HWIO', 'NHWC')
_VALID = ((0, 0), (0, 0))


def _undilated(options):
  """No dilation and no grouping, in ``lax.conv_general_dilated``'s keyword arguments."""
  return all(options.get(name) in (None, 1, (1, 1), [1, 1])
             for name in ('lhs_dilation', 'rhs_dilation', 'feature_group_count',
                          'batch_group_count'))


def _pads(padding, lhs, rhs, strides=(1, 1)):
  """``padding`` ('SAME', 'VALID' or pairs) as a tuple of (before, after) pairs."""
  if isinstance(padding, str):
    padding = jax.lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], strides, padding)
  return tuple(map(tuple, padding))


def conv_general_dilated(lhs, rhs, window_strides, padding, dimension_numbers=None, **kwargs):
  """``lax.conv_general_dilated``, except five kinds of undilated NHWC conv on the CPU:

  - 1x1, stride 1, unpadded (output heads, fusion layers), and any conv to at most
    MATMUL_CONV_ROWS output pixels over the batch (the innermost levels of a U-Net): one
    matmul of its patches, ``_matmul_conv`` (XLA:CPU's convs re-lay out the kernel for every
    pass, and take slow paths at tiny outputs);
  - other stride-1 convs to at most FEW_CHANNELS outputs, whose weight gradient XLA:CPU
    computes as a whole-image correlation: ``_few_outputs_conv``;
  - stride 1, 3x3 or 4x4, float32, from at least WINOGRAD_CHANNELS inputs (the residual
    blocks, deep VGG layers, the PatchGAN's stride-1 conv), or 2x2 to at least
    WINOGRAD_2X2_ROWS output pixels over the batch (the transposed convs' phase conv):
    ``_winograd_conv``;
  - 4x4 stride 2 whose space-to-depth form is such a 2x2 conv (``_space_to_depth_winograd_takes``:
    the U-Net's and PatchGAN's down convs from 128 channels): ``_winograd_conv`` of that form;
  - any other from many channels to few output pixels for its outputs
    (``_wide_matmul_takes``): ``_matmul_conv`` again;
  - any other whose gradients are faster by image group (``_image_groups_for``) or, for a
    4x4 stride-2 conv, by space-to-depth (``_space_to_depth_takes``):
    ``_grouped_gradients_conv``.
  """
  nhwc = (_undilated(kwargs) and dimension_numbers
          and jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
          == jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC))
  if not nhwc:
    return jax.lax.conv_general_dilated(lhs, rhs, window_strides, padding,
                                        dimension_numbers=dimension_numbers, **kwargs)
  strides, precision = tuple(window_strides), kwargs.get('precision')
  padding = _pads(padding, lhs, rhs, strides)
  if _matmul_takes(lhs, rhs, padding, strides):
    return _matmul_conv(lhs, rhs, padding, precision, strides)
  if strides == (1, 1) and rhs.shape[-1] <= FEW_CHANNELS:
    return _few_outputs_conv(lhs, rhs, padding, precision)
  if strides == (1, 1) and _winograd_takes(lhs, rhs, padding):
    return _winograd_conv(lhs, rhs, precision, padding[0], False)
  if _space_to_depth_winograd_takes(lhs, rhs, padding, strides):
    return _winograd_conv(*_space_to_depth_operands(lhs, rhs), precision, (0, 0), False)
  if _wide_matmul_takes(lhs, rhs, padding, strides):
    return _matmul_conv(lhs, rhs, padding, precision, strides)
  return _nhwc_conv(lhs, rhs, padding, precision, strides)


def _output_size(x, kernel_size, padding, strides):
  """The output (height, width) of an NHWC conv of ``x`` by a ``kernel_size`` kernel,
  ``padding`` as pairs."""
  return tuple((size + sum(pads) - k) // stride + 1 for size, k, stride, pads
               in zip(x.shape[1:3], kernel_size, strides, padding))


def _rows(x, kernel, padding, strides):
  """A conv's output pixels over the batch (the rows of its patch matrix); None for a symbolic
  batch (jax.export) or negative padding."""
  if not isinstance(x.shape[0], int) or min(map(min, padding)) < 0:
    return None
  height, width = _output_size(x, kernel.shape[:2], padding, strides)
  return x.shape[0] * height * width


def _matmul_takes(x, kernel, padding, strides):
  """Whether ``_matmul_conv`` computes this conv faster than XLA:CPU and any other form: a
  1x1 stride-1 unpadded conv, or one to at most MATMUL_CONV_ROWS output pixels over the batch."""
  if kernel.shape[:2] == (1, 1) and strides == (1, 1) and padding == ((0, 0), (0, 0)):
    return True
  rows = _rows(x, kernel, padding, strides)
  return rows is not None and rows <= MATMUL_CONV_ROWS


def _wide_matmul_takes(x, kernel, padding, strides):
  """Whether ``_matmul_conv`` computes this conv, which no Winograd conv takes, faster than
  XLA:CPU: from at least WIDE_MATMUL_CHANNELS inputs to at most WIDE_MATMUL_ROWS_PER_FEATURE
  output pixels over the batch for each output channel, where re-laying out the kernel for
  each pass costs XLA:CPU more than the patches cost the matmul. From fewer inputs it loses,
  and Winograd is faster still where it applies."""
  rows = _rows(x, kernel, padding, strides)
  return (rows is not None and x.shape[-1] >= WIDE_MATMUL_CHANNELS
          and rows <= WIDE_MATMUL_ROWS_PER_FEATURE * kernel.shape[-1])


def _patches(x, kernel_size, padding, strides):
  """The k·k taps' views of the padded ``x`` a conv's outputs see, side by side on the channel
  axis: [N, H', W', k·k·C], tap-major like a [k, k, C, F] kernel's rows."""
  oh, ow = _output_size(x, kernel_size, padding, strides)
  x = jnp.pad(x, ((0, 0), *padding, (0, 0)))
  (kh, kw), (sh, sw) = kernel_size, strides
  views = [x[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
           for i in range(kh) for j in range(kw)]
  return concat_channels(views)


def _patch_kernel_gradient(x, dy, kernel_size, padding, strides, precision):
  """The float32 dkernel [kh, kw, C, F] of an NHWC conv of ``x`` for the output gradient
  ``dy``: its patches [rows, k·k·C] summed over rows with dy [rows, F] (``_sum_over_rows``)."""
  patches = _patches(x, kernel_size, padding, strides)
  dkernel = _sum_over_rows(patches.reshape(-1, patches.shape[-1]), dy.reshape(-1, dy.shape[-1]),
                           precision)
  return dkernel.reshape(*kernel_size, x.shape[-1], dy.shape[-1])


def _patch_matmul(x, kernel, padding, precision, strides):
  """An NHWC conv as one matmul: its patches by the kernel as a [k·k·C, F] matrix."""
  return jnp.einsum('nhwk,kf->nhwf', _patches(x, kernel.shape[:2], padding, strides),
                    kernel.reshape(-1, kernel.shape[-1]), precision=precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _matmul_conv(x, kernel, padding, precision, strides):
  """``_patch_matmul`` with the weight gradient as one plain matmul of the patches and dy
  (``_sum_over_rows``): by autodiff it is a dot of the leading axes, which XLA:CPU runs
  slower."""
  return _patch_matmul(x, kernel, padding, precision, strides)


def _matmul_forward(x, kernel, padding, precision, strides):
  return _patch_matmul(x, kernel, padding, precision, strides), (x, kernel)


def _matmul_backward(padding, precision, strides, residuals, dy):
  x, kernel = residuals
  dx = jax.vjp(lambda x: _patch_matmul(x, kernel, padding, precision, strides), x)[1](dy)[0]
  dkernel = _patch_kernel_gradient(x, dy, kernel.shape[:2], padding, strides, precision)
  return dx, dkernel.astype(kernel.dtype)


_matmul_conv.defvjp(_matmul_forward, _matmul_backward)


def _conv(x, kernel, padding, precision, strides=(1, 1)):
  return jax.lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=_NHWC,
                                      precision=precision)


def _nhwc_conv(x, kernel, padding, precision, strides=(1, 1)):
  """An NHWC conv (``padding`` as pairs) on the CPU, with ``_grouped_gradients_conv``'s
  gradients where they are faster."""
  height, width = _output_size(x, kernel.shape[:2], padding, strides)
  if (_space_to_depth_takes(x, kernel, padding, strides)
      or max(_image_groups_for(x.shape[0], height * width, strides, part)
             for part in ('input', 'kernel')) > 1):
    return _grouped_gradients_conv(x, kernel, padding, precision, strides)
  return _conv(x, kernel, padding, precision, strides)


def _pad_one(x):
  return jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))


def _taps_by_parity(kernel):
  """A 4x4 kernel [4, 4, C, F] as [2, 2, 2, 2, C, F]: [a, p, b, q] is tap (2a + p, 2b + q)."""
  return kernel.reshape(2, 2, 2, 2, *kernel.shape[2:])


def _space_to_depth_kernel(kernel):
  """A 4x4 stride-2 kernel [4, 4, C, F] as the 2x2 kernel [2, 2, 4C, F] of the same conv on
  the space-to-depth input: tap (2a + p, 2b + q) -> (a, b, (p, q, C))."""
  channels, features = kernel.shape[2:]
  return _taps_by_parity(kernel).transpose(0, 2, 1, 3, 4, 5).reshape(2, 2, 4 * channels, features)


def _padded_4x4_stride_2(x, kernel, padding, strides):
  """Whether a conv is a 4x4 stride-2 one with one pixel of padding on inputs of even size,
  which is a 2x2 stride-1 conv of its padded input's space-to-depth
  (``_space_to_depth_operands``)."""
  return (strides == (2, 2) and kernel.shape[:2] == (4, 4) and padding == ((1, 1), (1, 1))
          and all(size % 2 == 0 for size in x.shape[1:3]))


def _space_to_depth_operands(x, kernel):
  """The input and kernel of the 2x2 stride-1 VALID conv that is the 4x4 stride-2 conv of ``x``
  padded by one (``_padded_4x4_stride_2``)."""
  return space_to_depth(_pad_one(x)), _space_to_depth_kernel(kernel)


def _space_to_depth_takes(x, kernel, padding, strides):
  """Whether a conv is such a 4x4 stride-2 one on inputs from 32², whose input gradient
  ``_space_to_depth_input_gradient`` computes faster."""
  return (_padded_4x4_stride_2(x, kernel, padding, strides)
          and all(size >= 32 for size in x.shape[1:3]))


def _space_to_depth_winograd_takes(x, kernel, padding, strides):
  """Whether a conv is such a 4x4 stride-2 one from at least SPACE_TO_DEPTH_WINOGRAD_CHANNELS
  inputs whose space-to-depth form (4C inputs) is a 2x2 conv ``_winograd_takes``. From fewer
  channels it is level alone but slower in a training step, where XLA fuses the space-to-depth
  transpose into each input tile's loop."""
  return (_padded_4x4_stride_2(x, kernel, padding, strides)
          and x.shape[-1] >= SPACE_TO_DEPTH_WINOGRAD_CHANNELS
          and _winograd_takes(*jax.eval_shape(_space_to_depth_operands, x, kernel), _VALID))


def _space_to_depth_input_gradient(x, kernel, dy, precision):
  """dx of a 4x4 stride-2 conv padded by one (``_space_to_depth_takes``) by its form as a 2x2
  stride-1 conv of the padded input's space-to-depth: XLA:CPU's input gradient of a strided
  conv is slower than that of the stride-1 conv."""
  conv = lambda x: _conv(*_space_to_depth_operands(x, kernel), _VALID, precision)
  return jax.vjp(conv, x)[1](dy)[0]


def _image_groups(batch):
  """How many image groups to split ``batch`` into: its largest divisor up to
  MAX_IMAGE_GROUPS (1 for a symbolic batch, as jax.export traces one). Group g holds images
  g, g + groups, ..."""
  if not isinstance(batch, int):
    return 1
  return max(d for d in range(1, min(batch, MAX_IMAGE_GROUPS) + 1) if batch % d == 0)


def _image_groups_for(batch, pixels, strides, part):
  """The image groups in which to take the 'kernel' or 'input' gradient (``part``) of a conv of
  ``batch`` images to ``pixels`` output pixels each. Where the output is large, XLA:CPU computes
  these for a batch far slower per image than for one image; the input gradient of a stride-1
  conv is slower split, and so are small outputs."""
  large = (pixels >= GROUPED_KERNEL_GRADIENT_PIXELS if part == 'kernel' else
           strides != (1, 1) and pixels >= GROUPED_INPUT_GRADIENT_PIXELS)
  return _image_groups(batch) if large else 1


def _by_image_group(gradient, part, x, dy, strides):
  """``gradient(x, dy)`` for each image group's x and dy (``_image_groups_for`` the ``part``;
  one group: the whole batch), and the number of groups."""
  groups = _image_groups_for(x.shape[0], dy.shape[1] * dy.shape[2], strides, part)
  group = lambda a, g: a.reshape(-1, groups, *a.shape[1:])[:, g]
  return [gradient(group(x, g), group(dy, g)) for g in range(groups)], groups


def _input_gradient(x, kernel, dy, padding, precision, strides=(1, 1)):
  """dx of the NHWC conv of ``x`` by ``kernel`` for the output gradient ``dy``."""
  if _space_to_depth_takes(x, kernel, padding, strides):
    return _space_to_depth_input_gradient(x, kernel, dy, precision)
  gradient = lambda x, dy: jax.vjp(lambda x: _conv(x, kernel, padding, precision, strides),
                                   x)[1](dy)[0]
  parts, groups = _by_image_group(gradient, 'input', x, dy, strides)
  return parts[0] if groups == 1 else jnp.stack(parts, axis=1).reshape(x.shape)


def _kernel_gradient(x, kernel, dy, padding, precision, strides=(1, 1)):
  """dkernel of the NHWC conv of ``x`` by ``kernel`` for the output gradient ``dy``."""
  gradient = lambda x, dy: jax.vjp(lambda k: _conv(x, k, padding, precision, strides),
                                   kernel)[1](dy)[0]
  return functools.reduce(jnp.add, _by_image_group(gradient, 'kernel', x, dy, strides)[0])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _grouped_gradients_conv(x, kernel, padding, precision, strides):
  """An NHWC conv whose input and kernel gradients are taken by image group where that is
  faster (``_image_groups_for``), the input gradient of a 4x4 stride-2 one by space-to-depth
  (``_space_to_depth_takes``)."""
  return _conv(x, kernel, padding, precision, strides)


def _grouped_forward(x, kernel, padding, precision, strides):
  return _conv(x, kernel, padding, precision, strides), (x, kernel)


def _grouped_backward(padding, precision, strides, residuals, dy):
  x, kernel = residuals
  return (_input_gradient(x, kernel, dy, padding, precision, strides),
          _kernel_gradient(x, kernel, dy, padding, precision, strides))


_grouped_gradients_conv.defvjp(_grouped_forward, _grouped_backward)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _few_outputs_conv(x, kernel, padding, precision):
  """A stride-1 NHWC conv whose weight gradient is one matmul of the padded input with the
  k·k shifted copies of the few-channel output gradient:
  dW[i, j] = Σ_q x[q] ⊗ dy[q - (i, j)]."""
  return _conv(x, kernel, padding, precision)


def _few_outputs_forward(x, kernel, padding, precision):
  return _conv(x, kernel, padding, precision), (x, kernel)


def _few_outputs_backward(padding, precision, residuals, dy):
  x, kernel = residuals
  kh, kw, channels, features = kernel.shape
  _, input_vjp = jax.vjp(lambda x: _conv(x, kernel, padding, precision), x)
  xp = jnp.pad(x, ((0, 0), *padding, (0, 0)))
  hp, wp = xp.shape[1:3]
  dyp = jnp.pad(dy, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)))
  shifted = concat_channels([dyp[:, kh - 1 - i:kh - 1 - i + hp, kw - 1 - j:kw - 1 - j + wp]
                             for i in range(kh) for j in range(kw)])
  dkernel = jnp.einsum('nhwc,nhwt->ct', xp, shifted, precision=precision,
                       preferred_element_type=jnp.float32)
  dkernel = dkernel.reshape(channels, kh, kw, features).transpose(1, 2, 0, 3)
  return input_vjp(dy)[0], dkernel.astype(kernel.dtype)


_few_outputs_conv.defvjp(_few_outputs_forward, _few_outputs_backward)


# Winograd F(2x2, rxr) (Lavin & Gray, 2016): each 2x2 output tile is A^T [(G g G^T) ⊙ (B^T d B)] A
# for the (r+1)x(r+1) input tile d around it, so an rxr conv becomes (r+1)² matmuls of the
# transformed input and kernel: 1.78x fewer multiplies for 2x2, 2.25x for 3x3, 2.56x for 4x4.
# The matrices (A^T, G, B^T) are Toom-Cook's at the points 0, 1 (then -1, then 2) and
# infinity, with B^T's row scales moved into G so that the input transform has small integer
# weights.
_WINOGRAD = {
    2: ([[1, 1, 0], [0, 1, 1]],
        [[1, 0], [1, 1], [0, 1]],
        [[1, -1, 0], [0, 1, 0], [0, -1, 1]]),
    3: ([[1, 1, 1, 0], [0, 1, -1, -1]],
        [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
        [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]),
    4: ([[1, 1, 1, 1, 0], [0, 1, -1, 2, 1]],
        [[1 / 2, 0, 0, 0], [1 / 2, 1 / 2, 1 / 2, 1 / 2], [1 / 6, -1 / 6, 1 / 6, -1 / 6],
         [1 / 6, 1 / 3, 2 / 3, 4 / 3], [0, 0, 0, 1]],
        [[2, -1, -2, 1, 0], [0, 2, 1, -1, 0], [0, -2, 3, -1, 0], [0, -1, 0, 1, 0],
         [0, 2, -1, -2, 1]]),
}


def _transform(matrix, xs):
  """``matrix`` applied to the list of arrays ``xs``: [Σ_j matrix[i][j] xs[j] for each row i]."""
  return [functools.reduce(jnp.add, [x if c == 1 else c * x for c, x in zip(row, xs) if c])
          for row in matrix]


def _transposed(matrix):
  return [list(column) for column in zip(*matrix)]


def _both_sides(matrix, a):
  """matrix · a · matrix^T over the two leading axes of ``a``, as nested lists of arrays."""
  return [_transform(matrix, list(row)) for row in _transform(matrix, list(a))]


def _windows_both_sides(x, matrix, tiles):
  """matrix · d · matrix^T for the window d of len(matrix[0]) rows and columns at every other
  pixel of ``x`` [N, H, W, C], for ``tiles`` (rows, columns) of them: nested lists of arrays
  [N, rows, columns, C]."""
  (th, tw), size = tiles, len(matrix[0])
  rows = _transform(matrix, [x[:, i:i + 2 * th:2] for i in range(size)])
  return [_transform(matrix, [row[:, :, j:j + 2 * tw:2] for j in range(size)]) for row in rows]


def _output_tiles(x, r, padding):
  """The 2x2 output tiles (rows, columns) of a stride-1 r x r conv of ``x`` zero-padded by
  ``padding`` (before, after) on each spatial axis."""
  oh, ow = _output_size(x, (r, r), (padding, padding), (1, 1))
  return -(-oh // 2), -(-ow // 2)


def _input_tiles(x, r, padding):
  """B^T d B for the (r+1)x(r+1) input tile d of each 2x2 output tile of that conv: a list of
  (r+1) lists of (r+1) arrays [N, tile rows, tile columns, C]."""
  h, w = x.shape[1:3]
  th, tw = _output_tiles(x, r, padding)
  before = padding[0]
  xp = jnp.pad(x, ((0, 0), (before, 2 * th + r - 1 - h - before),
                   (before, 2 * tw + r - 1 - w - before), (0, 0)))
  return _windows_both_sides(xp, _WINOGRAD[r][2], (th, tw))


def _winograd(x, kernel, precision, transposed=False, padding=(1, 1)):
  """The stride-1 conv of ``x`` [N, H, W, C] by ``kernel`` [r, r, C, F] (r = 2, 3 or 4),
  zero-padded by ``padding`` (before, after) on each spatial axis; ``transposed``: by its
  adjoint, the kernel flipped in space with C and F swapped (a conv's input gradient)."""
  n = x.shape[0]
  r = kernel.shape[0]
  output, kernel_transform, _ = _WINOGRAD[r]
  oh, ow = _output_size(x, (r, r), (padding, padding), (1, 1))
  th, tw = _output_tiles(x, r, padding)
  v = _input_tiles(x, r, padding)
  if transposed:
    kernel = kernel[::-1, ::-1]
  u = _both_sides(kernel_transform, kernel)
  spec = 'nhwc,fc->nhwf' if transposed else 'nhwc,cf->nhwf'
  m = [[jnp.einsum(spec, v[a][b], u[a][b], precision=precision) for b in range(r + 1)]
       for a in range(r + 1)]
  columns = [_transform(output, [m[a][b] for a in range(r + 1)]) for b in range(r + 1)]
  y = jnp.stack([t for i in range(2) for t in _transform(output, [c[i] for c in columns])],
                axis=3)                           # the four output phases (i, j)
  y = y.reshape(*y.shape[:3], 2, 2, y.shape[-1]).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(n, 2 * th, 2 * tw, -1)[:, :oh, :ow]


def _winograd_kernel_gradient(x, dy, r, padding, precision):
  """dkernel [r, r, C, F] of the stride-1 r x r conv of ``x`` zero-padded by ``padding``
  (before, after) on each axis, for the output gradient ``dy``: the conv of x by dy's 2x2 tiles,
  so Winograd F(r x r, 2x2), whose matrices are F(2x2, r x r)'s swapped and transposed (dy's
  tiles transformed by A, the sums by G^T). The (r+1)² sums over the tiles are one batched
  matmul [C, tiles] x [tiles, F], faster than XLA:CPU's weight gradient."""
  output, kernel_transform, _ = _WINOGRAD[r]
  oh, ow = dy.shape[1:3]
  th, tw = _output_tiles(x, r, padding)
  dy = jnp.pad(dy, ((0, 0), (0, 2 * th - oh), (0, 2 * tw - ow), (0, 0)))
  u = _windows_both_sides(dy, _transposed(output), (th, tw))
  by_position = lambda tiles: jnp.stack([t for row in tiles for t in row]).reshape(
      (r + 1) ** 2, -1, tiles[0][0].shape[-1])
  m = jnp.einsum('ktc,ktf->kcf', by_position(_input_tiles(x, r, padding)), by_position(u),
                 precision=precision).reshape(r + 1, r + 1, x.shape[-1], dy.shape[-1])
  return jnp.stack([jnp.stack(row) for row in _both_sides(_transposed(kernel_transform), m)])


def _winograd_takes(lhs, rhs, padding):
  """Whether a stride-1 conv (``padding`` as pairs) is one ``_winograd_conv`` computes faster
  than XLA:CPU: 3x3 or 4x4, or 2x2 to at least WINOGRAD_2X2_ROWS output pixels over the batch,
  float32, from at least WINOGRAD_CHANNELS inputs, the same padding of less than the kernel on
  both axes. To fewer rows the 2x2 conv loses."""
  r = rhs.shape[0]
  if r == 2:
    rows = _rows(lhs, rhs, padding, (1, 1))
    if rows is None or rows < WINOGRAD_2X2_ROWS:
      return False
  return (rhs.shape[:2] in ((2, 2), (3, 3), (4, 4)) and padding[0] == padding[1]
          and 0 <= min(padding[0]) <= max(padding[0]) < r and lhs.shape[-1] >= WINOGRAD_CHANNELS
          and lhs.dtype == rhs.dtype == jnp.float32)


def _winograd_padded(x, padding, reflect):
  """What ``_winograd_conv`` convolves, and the zero padding it adds: ``x`` reflection-padded
  by one pixel and none, or ``x`` and ``padding``."""
  return (reflect_pad(x, 1), (0, 0)) if reflect else (x, padding)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _winograd_conv(x, kernel, precision, padding, reflect):
  """A stride-1 2x2, 3x3 or 4x4 conv zero-padded by ``padding`` (before, after) on each axis,
  or a 3x3 one ``reflect``-ion-padded by one pixel: forward, input and weight gradients by
  Winograd (autodiff through ``_winograd`` is slower)."""
  padded, pad = _winograd_padded(x, padding, reflect)
  return _winograd(padded, kernel, precision, padding=pad)


def _winograd_forward(x, kernel, precision, padding, reflect):
  return _winograd_conv(x, kernel, precision, padding, reflect), (x, kernel)


def _once_known(x, y):
  """``x`` as a value computed from ``y`` (plus 0 times one element of it): what is derived
  from it is computed after ``y``, and is never the same expression as anything derived from
  ``x`` before. (An optimization barrier around x and y did not do this: XLA:CPU's compiled
  step had none left, and the same temp size.)"""
  return x + 0 * y.reshape(-1)[0]


def _winograd_backward(precision, padding, reflect, residuals, dy):
  x, kernel = residuals
  # The weight gradient's input tiles from x once dy is known: otherwise XLA's CSE takes the
  # forward's, and keeps 4x the input alive from each conv's forward to its backward.
  x = _once_known(x, dy)
  padded, padding_vjp, pad = jax.vjp(lambda x: _winograd_padded(x, padding, reflect), x,
                                     has_aux=True)
  r = kernel.shape[0]
  d_padded = _winograd(dy, kernel, precision, transposed=True,
                       padding=(r - 1 - pad[0], r - 1 - pad[1]))
  return (padding_vjp(d_padded)[0],
          _winograd_kernel_gradient(padded, dy, r, pad, precision))


_winograd_conv.defvjp(_winograd_forward, _winograd_backward)

def reflect_padded_conv(lhs, rhs, dimension_numbers, precision):
  """An ``nn.Conv`` ``conv_general_dilated`` that reads its ((p, p), (p, p)) ``padding`` (odd
  k x k kernel, p = k // 2, stride 1) as reflection padding.

  On the CPU: a wide 3x3 conv by Winograd (``_winograd_conv``) on the reflected input; any
  other, the zero-padded conv plus the convs of what reflection adds (the frame) on the four
  border strips it reaches. XLA:CPU runs a conv over a pre-padded input slower (fwd+bwd)
  than one that pads inside the conv, and far slower forward for a 7x7 conv to few outputs. The zero-padded conv goes through ``conv_general_dilated`` above, so a head to few
  outputs also gets its one-matmul weight gradient; the thin strips stay with XLA. Elsewhere:
  pad, then a VALID conv.
  """
  p = rhs.shape[0] // 2
  padding = ((p, p), (p, p))
  conv = functools.partial(jax.lax.conv_general_dilated, rhs=rhs, window_strides=(1, 1),
                           dimension_numbers=dimension_numbers, precision=precision)
  if _winograd_takes(lhs, rhs, padding):
    return _winograd_conv(lhs, rhs, precision, (1, 1), True)
  h, w = lhs.shape[1:3]
  frame = reflect_pad(lhs, p) - jnp.pad(lhs, ((0, 0), (p, p), (p, p), (0, 0)))

  def strip(part, rows, cols):
    """The conv of one part of the frame, zero-padded to the p rows or columns it reaches."""
    return conv(jnp.pad(part, ((0, 0), rows, cols, (0, 0))), padding='VALID')
  middle = frame[:, p:h + p]                  # the side columns, corners excluded
  y = conv_general_dilated(lhs, rhs, (1, 1), padding, dimension_numbers=dimension_numbers,
                           precision=precision)
  y = y.at[:, :p].add(strip(frame[:, :p], (0, 2 * p), (0, 0)))
  y = y.at[:, h - p:].add(strip(frame[:, h + p:], (2 * p, 0), (0, 0)))
  y = y.at[:, :, :p].add(strip(middle[:, :, :p], (p, p), (0, 2 * p)))
  return y.at[:, :, w - p:].add(strip(middle[:, :, w + p:], (p, p), (2 * p, 0)))


# Rows from which ``_sum_over_rows`` transposes its second operand, not its first.
TRANSPOSE_SECOND_ROWS = 2048


def _sum_over_rows(a, b, precision):
  """Σ_r a[r] ⊗ b[r] = aᵀb [K, F] for a [R, K] and b [R, F] whose rows are the batch's, as one
  plain matmul of one operand transposed in memory by the other: XLA:CPU's dot that contracts
  both operands' leading axis runs at about half the GFLOP/s. From TRANSPOSE_SECOND_ROWS rows
  (bᵀa)ᵀ, below them (aᵀ)b."""
  if a.shape[0] >= TRANSPOSE_SECOND_ROWS:   # the barrier keeps XLA
    return jax.lax.optimization_barrier(   # from folding the .T back into the dot
        jnp.dot(b.T, a, precision=precision, preferred_element_type=jnp.float32)).T
  return jnp.dot(a.T, b, precision=precision, preferred_element_type=jnp.float32)


def _stacked_phase_kernel(kernel):
  """The 4x4 [4, 4, C, F] kernel as one 2x2 kernel [2, 2, C, 4F]: output block 2r + s holds
  kernel[r::2, s::2], the taps of phase (r, s). One reshape and a transpose, so its gradient is
  one transpose (strided slices' gradients are zero-padded kernels that XLA:CPU writes out)."""
  channels, features = kernel.shape[2:]
  return _taps_by_parity(kernel).transpose(0, 2, 4, 1, 3, 5).reshape(2, 2, channels, 4 * features)


def _interleave_phases(z, height, width):
  """The stacked conv's output [N, H + 1, W + 1, 4F] -> the transposed conv's [N, 2H, 2W, F]:
  phase (r, s) is block 2r + s at offset (r, s), interleaved by depth-to-space."""
  features = z.shape[-1] // 4
  phases = [z[:, r:r + height, s:s + width, (2 * r + s) * features:(2 * r + s + 1) * features]
            for r in (0, 1) for s in (0, 1)]
  return depth_to_space(concat_channels(phases))


def _stacked_operands(x, kernel):
  """The input and kernel of the 2x2 VALID conv to the four phases' 4F channels: the one-padded
  ``x`` and the stacked phase kernel."""
  return _pad_one(x), _stacked_phase_kernel(kernel)


def _stacked_conv(x, kernel, precision):
  return conv_general_dilated(*_stacked_operands(x, kernel), (1, 1), _VALID, _NHWC,
                              precision=precision)


def _conv_transpose_2x(x, kernel, precision):
  return _interleave_phases(_stacked_conv(x, kernel, precision), *x.shape[1:3])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_transpose_2x(x, kernel, precision):
  """``nn.ConvTranspose(F, (4, 4), strides=(2, 2), padding='SAME')``'s function of ``x`` and its
  [4, 4, C, F] ``kernel`` as one stride-1 conv.

  Output pixel (2i + r, 2j + s) only meets the kernel taps of its phase (r, s): rows r and r + 2,
  columns s and s + 2, over inputs (i - 1, i) for r = 0 and (i, i + 1) for r = 1. So one 2x2
  conv of the one-padded input to 4F channels (the four phases' kernels side by side) holds
  every phase, phase (r, s) at offset (r, s); depth-to-space interleaves them. Same FLOPs as
  the transposed conv (plus one row and column), and an ordinary conv's gradients, which
  XLA:CPU computes far faster than those of ``lax.conv_transpose``. The input gradient is the
  stacked conv's; the weight gradient the Winograd conv's where one takes the stacked conv
  (``_winograd_takes``), else ``_stacked_kernel_gradient``'s (XLA:CPU's by autodiff is
  slower)."""
  return _conv_transpose_2x(x, kernel, precision)


def _conv_transpose_forward(x, kernel, precision):
  return _conv_transpose_2x(x, kernel, precision), (x, kernel)


def _stacked_kernel_gradient(x, kernel, dz, precision):
  """d(stacked kernel) [2, 2, C, 4F] for the stacked conv's output gradient ``dz``: the
  padded input's four tap views side by side [rows, 4C] summed over rows with dz [rows, 4F]
  (``_patch_kernel_gradient``), faster than the phases' weight gradients by image group or
  one dot per tap."""
  return _patch_kernel_gradient(x, dz, (2, 2), ((1, 1), (1, 1)), (1, 1),
                                precision).astype(kernel.dtype)


def _conv_transpose_backward(precision, residuals, dy):
  x, kernel = residuals
  (n, height, width, _), features = x.shape, kernel.shape[-1]
  stacked = jax.ShapeDtypeStruct((n, height + 1, width + 1, 4 * features), dy.dtype)
  dz, = jax.linear_transpose(lambda z: _interleave_phases(z, height, width), stacked)(dy)
  if _winograd_takes(*jax.eval_shape(_stacked_operands, x, kernel), _VALID):
    return jax.vjp(lambda x, kernel: _stacked_conv(x, kernel, precision), x, kernel)[1](dz)
  dx = jax.vjp(lambda x: _stacked_conv(x, kernel, precision), x)[1](dz)[0]
  dstacked = _stacked_kernel_gradient(x, kernel, dz, precision)
  return dx, jax.vjp(_stacked_phase_kernel, kernel)[1](dstacked)[0]


conv_transpose_2x.defvjp(_conv_transpose_forward, _conv_transpose_backward)
