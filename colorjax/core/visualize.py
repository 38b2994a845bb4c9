"""Image grids for people to look at: contact sheets and sample grids (NumPy, no TF)."""
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from colorjax.core import color

CHANNEL_VIEW_L = 65.0  # lightness at which a lone a or b channel is shown
LABEL_HEIGHT = 12      # pixels of the header row that names the columns
LAB_CHANNELS = ('colour', 'L', 'a', 'b')  # the columns of lab_channels


def grid(rows, labels=(), gap=2):
  """rows: a list of equally long lists of float RGB images [H, W, 3] in [0, 1] -> uint8, with
  a header naming each column when ``labels`` are given (cut to the column's width)."""
  height, width = rows[0][0].shape[:2]
  columns = len(rows[0])
  top = LABEL_HEIGHT + gap if labels else 0
  sheet = np.ones((top + len(rows) * (height + gap) - gap, columns * (width + gap) - gap, 3))
  for r, row in enumerate(rows):
    for c, image in enumerate(row):
      y, x = top + r * (height + gap), c * (width + gap)
      sheet[y:y + height, x:x + width] = image
  sheet = Image.fromarray(np.asarray(color.unit_to_uint8(sheet, xp=np)))
  draw, font = ImageDraw.Draw(sheet), ImageFont.load_default()
  for c, label in enumerate(labels):
    while label and draw.textlength(label, font=font) > width:
      label = label[:-1]
    draw.text((c * (width + gap), 0), label, fill=(0, 0, 0), font=font)
  return np.asarray(sheet)


def lab_channels(lab):
  """Lab [H, W, 3] -> [colour, L as gray, a alone, b alone] as RGB images in [0, 1]."""
  L, a, b = lab[..., :1], lab[..., 1:2], lab[..., 2:]
  zero = np.zeros_like(L)
  lightness = np.full_like(L, CHANNEL_VIEW_L)
  views = [lab, np.concatenate([L, zero, zero], -1), np.concatenate([lightness, a, zero], -1),
           np.concatenate([lightness, zero, b], -1)]
  return [np.asarray(color.lab_to_rgb(v, xp=np)) for v in views]


def save_png(path, image):
  """Writes a uint8 image, creating the folder."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  Image.fromarray(image).save(path)
