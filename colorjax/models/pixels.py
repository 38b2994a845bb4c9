"""Pixel rearrangements shared by the networks and the CPU convs: depth-to-space and its
inverse, and reflection padding (all NHWC)."""
import jax.numpy as jnp


def depth_to_space(x, block=2):
  """[N, H, W, C·b²] -> [N, H·b, W·b, C] (sub-pixel shuffle)."""
  n, h, w, c = x.shape
  x = x.reshape(n, h, w, block, block, c // block ** 2)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(n, h * block, w * block, c // block ** 2)


def space_to_depth(x):
  """[N, H, W, C] -> [N, H/2, W/2, 4C]: the inverse of ``depth_to_space(x, 2)``."""
  n, h, w, c = x.shape
  x = x.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h // 2, w // 2, 4 * c)


def reflect_pad(x, pixels):
  """``x`` padded by ``pixels`` on each side of H and W, reflected about the edge pixels."""
  return jnp.pad(x, ((0, 0), (pixels, pixels), (pixels, pixels), (0, 0)), mode='reflect')
