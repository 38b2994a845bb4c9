"""Evaluation metrics of predicted colour images against the originals (per image, jnp), and
of films (flicker).

RGB images are float in [0, 1]; ab errors and ΔE are in CIE Lab units. Each metric is checked
against scikit-image where it has one, otherwise against a float64 NumPy reference.
"""
import dm_pix
import jax.numpy as jnp

from colorjax.core import color, losses


# Metrics a checkpoint can be ranked by, and whether lower is better.
RANKING = {'ab_error': 'min', 'delta_e': 'min', 'psnr': 'max', 'ssim': 'max'}


def psnr(prediction, target):
  """Peak signal-to-noise ratio in dB, data range 1."""
  return dm_pix.psnr(prediction, target)


def ssim(prediction, target):
  return losses.ssim(prediction, target)


def ab_error(predicted_ab, target_ab):
  """Mean absolute ab error per image (Lab units)."""
  return jnp.mean(jnp.abs(predicted_ab - target_ab), axis=(1, 2, 3))


def ciede2000(lab1, lab2):
  """CIEDE2000 colour difference per pixel (Sharma, Wu and Dalal's formulation, kL=kC=kH=1)."""
  L1, a1, b1 = jnp.moveaxis(lab1, -1, 0)
  L2, a2, b2 = jnp.moveaxis(lab2, -1, 0)
  chroma_mean = (jnp.hypot(a1, b1) + jnp.hypot(a2, b2)) / 2
  g = 0.5 * (1 - jnp.sqrt(chroma_mean ** 7 / (chroma_mean ** 7 + 25.0 ** 7)))
  a1, a2 = (1 + g) * a1, (1 + g) * a2
  c1, c2 = jnp.hypot(a1, b1), jnp.hypot(a2, b2)
  h1 = jnp.mod(jnp.arctan2(b1, a1), 2 * jnp.pi)
  h2 = jnp.mod(jnp.arctan2(b2, a2), 2 * jnp.pi)
  chromatic = c1 * c2 != 0
  dh = h2 - h1
  dh = jnp.where(dh > jnp.pi, dh - 2 * jnp.pi, jnp.where(dh < -jnp.pi, dh + 2 * jnp.pi, dh))
  dh = jnp.where(chromatic, dh, 0.0)
  d_hue = 2 * jnp.sqrt(c1 * c2) * jnp.sin(dh / 2)
  h_mean = jnp.where(jnp.abs(h1 - h2) <= jnp.pi, (h1 + h2) / 2,
                     jnp.where(h1 + h2 < 2 * jnp.pi, (h1 + h2) / 2 + jnp.pi,
                               (h1 + h2) / 2 - jnp.pi))
  h_mean = jnp.where(chromatic, h_mean, h1 + h2)
  L_mean, c_mean = (L1 + L2) / 2, (c1 + c2) / 2
  deg = jnp.pi / 180
  t = (1 - 0.17 * jnp.cos(h_mean - 30 * deg) + 0.24 * jnp.cos(2 * h_mean)
       + 0.32 * jnp.cos(3 * h_mean + 6 * deg) - 0.20 * jnp.cos(4 * h_mean - 63 * deg))
  rotation = 30 * deg * jnp.exp(-jnp.square((h_mean / deg - 275) / 25))
  r_c = 2 * jnp.sqrt(c_mean ** 7 / (c_mean ** 7 + 25.0 ** 7))
  s_l = 1 + 0.015 * jnp.square(L_mean - 50) / jnp.sqrt(20 + jnp.square(L_mean - 50))
  s_c, s_h = 1 + 0.045 * c_mean, 1 + 0.015 * c_mean * t
  dL, dC, dH = (L2 - L1) / s_l, (c2 - c1) / s_c, d_hue / s_h
  return jnp.sqrt(dL ** 2 + dC ** 2 + dH ** 2 - jnp.sin(2 * rotation) * r_c * dC * dH)


def colourfulness(rgb, absolute=False, xp=jnp):
  """Hasler and Süsstrunk's colourfulness per image, on the 0-255 scale (0: gray).

  ``absolute``: of |R - G| and |(R + G) / 2 - B|, as DDColor's evaluation code computes it
  (larger means, smaller spreads than the paper's signed opponent channels).
  """
  rgb = 255.0 * rgb
  rg = rgb[..., 0] - rgb[..., 1]
  yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
  if absolute:
    rg, yb = xp.abs(rg), xp.abs(yb)
  axes = tuple(range(1, rg.ndim))
  spread = xp.sqrt(xp.var(rg, axis=axes) + xp.var(yb, axis=axes))
  mean = xp.hypot(xp.mean(rg, axis=axes), xp.mean(yb, axis=axes))
  return spread + 0.3 * mean


def colour_metrics(predicted_ab, lab, rgb):
  """PSNR, SSIM, ab error, mean CIEDE2000 and colourfulness of L + predicted ab against the
  original image, per image."""
  L, ab = color.split_lab(lab)
  predicted_rgb = color.join_l_ab(L, predicted_ab)
  return {'psnr': psnr(predicted_rgb, rgb), 'ssim': ssim(predicted_rgb, rgb),
          'ab_error': ab_error(predicted_ab, ab),
          'delta_e': jnp.mean(ciede2000(color.rgb_to_lab(predicted_rgb), lab), axis=(1, 2)),
          'colourfulness': colourfulness(predicted_rgb)}


def eval_sums(predicted_ab, lab, rgb, mask):
  """Every task's eval: the metrics of the prediction and of the no-colour baseline
  (``*_gray``), and the originals' colourfulness, summed over the valid (mask) images."""
  mask = mask.astype(jnp.float32)
  per_image = {**colour_metrics(predicted_ab, lab, rgb),
               **{f'{name}_gray': value for name, value in
                  colour_metrics(jnp.zeros_like(predicted_ab), lab, rgb).items()},
               'colourfulness_original': colourfulness(rgb)}
  sums = {name: jnp.sum(value * mask) for name, value in per_image.items()}
  return {**sums, 'count': jnp.sum(mask)}


# |ΔL| (Lab units) below which a pixel counts as unchanged between two frames, for flicker
STEADY_L_CHANGE = 2.0
# Mean |ab| (Lab units) from which an image or film counts as in colour, so that an ab error
# against it means something
COLOUR_CHROMA = 2.0


def steady_ab_change(L_before, ab_before, L, ab, steady=STEADY_L_CHANGE, xp=jnp):
  """Flicker between two consecutive frames (L [..., 1], ab [..., 2], Lab units): the sum over
  the pixels whose L changed by less than ``steady`` of the mean |Δa|, |Δb|, and their count.
  A film's flicker is the sum over its frame pairs divided by the count."""
  unchanged = xp.abs(L - L_before)[..., 0] < steady
  change = xp.mean(xp.abs(ab - ab_before), axis=-1)
  return xp.sum(xp.where(unchanged, change, 0.0)), xp.sum(unchanged)
