"""sRGB <-> CIE Lab (D65, 2° observer) and YUV: all of colorjax's colour maths.

Every function is written once against a NumPy-like namespace ``xp`` (``jax.numpy`` by default),
so the same formulas run jitted on the device, in NumPy on the host, and inside tf.data
(``tf.experimental.numpy``) without a second copy. Float RGB is in [0, 1], L in [0, 100].
Branches use the "safe where" form (both sides finite) so gradients are finite everywhere,
including pure black and pure white.
"""
import numpy as np
import jax.numpy as jnp

# sRGB primaries (IEC 61966-2-1) to CIE XYZ, and the D65 reference white for the 2° observer.
_XYZ_FROM_RGB = np.array([[0.412453, 0.357580, 0.180423],
                          [0.212671, 0.715160, 0.072169],
                          [0.019334, 0.119193, 0.950227]])
_D65 = np.array([0.95047, 1.0, 1.08883])
# XYZ normalised by the white point, so Lab's f() is applied directly to the result.
_XYZN_FROM_RGB = _XYZ_FROM_RGB / _D65[:, None]
_RGB_FROM_XYZN = np.linalg.inv(_XYZN_FROM_RGB)
_YUV_FROM_RGB = np.array([[0.299, 0.587, 0.114],
                          [-0.14714119, -0.28886916, 0.43601035],
                          [0.61497538, -0.51496512, -0.10001026]])
_RGB_FROM_YUV = np.linalg.inv(_YUV_FROM_RGB)

_SRGB_LINEAR_KNEE = 0.04045        # companded value below which sRGB is linear
_SRGB_COMPAND_KNEE = 0.0031308     # linear value below which sRGB is linear
_LAB_EPSILON = 0.008856            # (6/29)^3: below it f(t) is linear
_LAB_F_KNEE = 0.2068966            # 6/29: the same knee on the f side
_LAB_SLOPE = 7.787                 # (29/6)^2 / 3

# Model value ranges: L in [0, 100] maps to [-1, 1]; ab is divided by AB_SCALE (sRGB's gamut
# spans roughly a in [-86, 98], b in [-108, 95]).
L_SCALE = 50.0
AB_SCALE = 110.0


def _apply_matrix(x, matrix, xp):
  """x[..., 3] @ matrix.T in x's dtype, as multiply-adds: exact float32 on every backend (a TPU
  or GPU would run a 3-channel dot on its matrix unit in bf16 or TF32) and one elementwise
  fusion with the colour maths around it."""
  rows = [sum(x[..., c] * float(matrix[d, c]) for c in range(matrix.shape[1]))
          for d in range(matrix.shape[0])]
  return xp.stack(rows, axis=-1)


def srgb_to_linear(rgb, xp=jnp):
  """Undo sRGB companding: [0, 1] -> linear light."""
  safe = xp.maximum(rgb, _SRGB_LINEAR_KNEE)
  return xp.where(rgb > _SRGB_LINEAR_KNEE, xp.power((safe + 0.055) / 1.055, 2.4), rgb / 12.92)


def linear_to_srgb(linear, xp=jnp):
  """sRGB companding of linear light, clipped to [0, 1] first."""
  linear = xp.clip(linear, 0.0, 1.0)
  safe = xp.maximum(linear, _SRGB_COMPAND_KNEE)
  return xp.where(linear > _SRGB_COMPAND_KNEE, 1.055 * xp.power(safe, 1 / 2.4) - 0.055,
                  linear * 12.92)


def rgb_to_lab(rgb, xp=jnp):
  """sRGB [..., 3] in [0, 1] to CIE Lab (L in [0, 100])."""
  t = _apply_matrix(srgb_to_linear(rgb, xp), _XYZN_FROM_RGB, xp)
  f = xp.where(t > _LAB_EPSILON, xp.cbrt(xp.maximum(t, _LAB_EPSILON)),
               _LAB_SLOPE * t + 16.0 / 116.0)
  fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
  return xp.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def lab_to_rgb(lab, xp=jnp):
  """CIE Lab [..., 3] to sRGB in [0, 1]; out-of-gamut colours are clipped, never NaN."""
  fy = (lab[..., 0] + 16.0) / 116.0
  f = xp.stack([fy + lab[..., 1] / 500.0, fy, xp.maximum(fy - lab[..., 2] / 200.0, 0.0)], axis=-1)
  safe = xp.maximum(f, _LAB_F_KNEE)
  t = xp.where(f > _LAB_F_KNEE, safe * safe * safe, (f - 16.0 / 116.0) / _LAB_SLOPE)
  return linear_to_srgb(_apply_matrix(t, _RGB_FROM_XYZN, xp), xp)


def rgb_to_gray(rgb, xp=jnp):
  """sRGB [..., 3] -> gray [..., 1] with the same CIE L* as the colour: lab_to_rgb(L, 0, 0)."""
  luminance = _apply_matrix(srgb_to_linear(rgb, xp), _XYZ_FROM_RGB[1:2], xp)
  return linear_to_srgb(luminance, xp)


def rgb_to_yuv(rgb, xp=jnp):
  """sRGB [..., 3] in [0, 1] to YUV (Y in [0, 1], U and V signed), the PAL/BT.601 matrix."""
  return _apply_matrix(rgb, _YUV_FROM_RGB, xp)


def yuv_to_rgb(yuv, xp=jnp):
  """YUV [..., 3] back to RGB (not clipped: YUV holds colours outside the RGB cube)."""
  return _apply_matrix(yuv, _RGB_FROM_YUV, xp)


def uint8_to_unit(rgb, dtype=jnp.float32, xp=jnp):
  """uint8 [0, 255] -> float [0, 1]."""
  return xp.asarray(rgb, dtype=dtype) / 255.0


def unit_to_uint8(rgb, xp=jnp):
  """float [0, 1] -> uint8, rounded and clipped."""
  return xp.asarray(xp.round(xp.clip(rgb, 0.0, 1.0) * 255.0), dtype=xp.uint8)


def split_lab(lab):
  """Lab [..., 3] -> (L [..., 1], ab [..., 2])."""
  return lab[..., :1], lab[..., 1:]


def normalize_l(L):
  """L in [0, 100] -> [-1, 1], the networks' input range."""
  return L / L_SCALE - 1.0


def denormalize_l(x):
  """Inverse of normalize_l."""
  return (x + 1.0) * L_SCALE


def normalize_ab(ab):
  """ab in Lab units -> about [-1, 1], the networks' regression target."""
  return ab / AB_SCALE


def denormalize_ab(x):
  """Inverse of normalize_ab."""
  return x * AB_SCALE


def join_l_ab(L, ab, xp=jnp):
  """L [..., 1] and ab [..., 2] in Lab units -> sRGB in [0, 1] (clipped, never NaN)."""
  return lab_to_rgb(xp.concatenate([L, ab], axis=-1), xp)
