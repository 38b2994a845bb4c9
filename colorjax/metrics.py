"""Evaluation metrics of predicted colour images against the originals (per image, jnp).

RGB images are float in [0, 1]; ab errors are in CIE Lab units.
"""
import dm_pix
import jax.numpy as jnp

from colorjax import color, losses


def psnr(prediction, target):
  """Peak signal-to-noise ratio in dB, data range 1."""
  return dm_pix.psnr(prediction, target)


def ssim(prediction, target):
  return losses.ssim(prediction, target)


def ab_error(predicted_ab, target_ab):
  """Mean absolute ab error per image (Lab units)."""
  return jnp.mean(jnp.abs(predicted_ab - target_ab), axis=(1, 2, 3))


def colour_metrics(predicted_ab, lab, rgb):
  """PSNR, SSIM and ab error of L + predicted ab against the original image, per image."""
  L, ab = color.split_lab(lab)
  predicted_rgb = color.join_l_ab(L, predicted_ab)
  return {'psnr': psnr(predicted_rgb, rgb), 'ssim': ssim(predicted_rgb, rgb),
          'ab_error': ab_error(predicted_ab, ab)}
