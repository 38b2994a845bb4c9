"""Batches as they reach the device -> the colour spaces the tasks need (on the device)."""
import jax.numpy as jnp

from colorjax.core import color


def rgb_and_lab(batch, key=None):
  """(float RGB in [0, 1], Lab) of a batch that holds uint8 'rgb' or float32 'lab'.

  ``key`` picks a stream of an unpaired batch ('a' or 'b'); uint8 means RGB, float means Lab.
  """
  pixels = batch[key] if key else batch.get('rgb', batch.get('lab'))
  if pixels.dtype == jnp.uint8:
    rgb = color.uint8_to_unit(pixels)
    return rgb, color.rgb_to_lab(rgb)
  return color.lab_to_rgb(pixels), pixels
