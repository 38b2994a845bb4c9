"""Reading any image file people have into uint8 RGB, safely: the one decoder of colorjax.

Used by the tf.data pipeline (through ``tf.numpy_function``) and by the commands that read
people's photos. Pillow does the decoding: it reads every format we accept (JPEG including CMYK,
PNG of any bit depth, palette and alpha images, BMP, GIF, WebP), checks the size in the header
before decoding anything, and lets JPEG decode straight to a reduced size (DCT scaling).
No TensorFlow here.
"""
import io
import math
import warnings

import numpy as np
from PIL import Image, ImageOps

from colorjax import color

EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.webp')
DEFAULT_MAX_PIXELS = 64_000_000


class ImageError(Exception):
  """An image that cannot be used; ``reason`` is a short tag for the skip counts."""

  def __init__(self, reason, detail):
    super().__init__(f'{reason}: {detail}')
    self.reason = reason


def read_bytes(path):
  """The file's bytes, or ImageError('unreadable') for a missing or forbidden file."""
  try:
    with open(path, 'rb') as f:
      return f.read()
  except OSError as e:
    raise ImageError('unreadable', e.strerror or str(e)) from None


def _to_rgb(image):
  """Any Pillow mode -> 'RGB'; alpha is composited over white, 16-bit is scaled to 8-bit."""
  if image.mode.startswith('I') or image.mode == 'F':
    gray = np.asarray(image, dtype=np.float64)
    if image.mode.startswith('I'):
      gray = gray / 257  # 16-bit [0, 65535] -> [0, 255]
    image = Image.fromarray(np.clip(np.round(gray), 0, 255).astype(np.uint8), 'L')
  if image.mode == 'P' and 'transparency' in image.info:
    image = image.convert('RGBA')
  if image.mode in ('RGBA', 'LA', 'PA', 'RGBa', 'La'):
    rgba = image.convert('RGBA')
    white = Image.new('RGBA', rgba.size, (255, 255, 255, 255))
    image = Image.alpha_composite(white, rgba)
  return image.convert('RGB')


def decode(data, *, short_side=None, max_pixels=DEFAULT_MAX_PIXELS):
  """Encoded image bytes -> uint8 [H, W, 3] RGB.

  With ``short_side`` the result is resized (antialiased) so that its shorter side has exactly
  that many pixels, keeping the aspect ratio; tiny images (even 1x1) are upsampled. The first
  frame of an animation is used and EXIF orientation is applied. Raises ImageError with reason
  'empty', 'too large' (more than ``max_pixels`` pixels in the header: a decompression bomb is
  refused before decoding) or 'undecodable'.
  """
  if not data:
    raise ImageError('empty', 'zero bytes')
  try:
    with warnings.catch_warnings():
      warnings.simplefilter('ignore', Image.DecompressionBombWarning)
      image = Image.open(io.BytesIO(data))
      width, height = image.size
      if width * height > max_pixels:
        raise ImageError('too large', f'{width}x{height} pixels is over the limit of {max_pixels}')
      if width < 1 or height < 1:
        raise ImageError('undecodable', f'{width}x{height} pixels')
      if short_side and image.format == 'JPEG':
        # Decode at the smallest DCT scale that still covers short_side.
        image.draft('RGB', (short_side, short_side))
      image.load()
      image = _to_rgb(ImageOps.exif_transpose(image))
  except ImageError:
    raise
  except Image.DecompressionBombError as e:
    raise ImageError('too large', str(e)) from None
  except Exception as e:  # Pillow raises many types for corrupt data.
    raise ImageError('undecodable', f'{type(e).__name__}: {e}') from None
  if short_side:
    image = resize_short_side(image, short_side)
  return np.asarray(image, dtype=np.uint8)


def resize_short_side(image, short_side):
  """Resize a Pillow image so that its shorter side is ``short_side``, keeping the aspect."""
  width, height = image.size
  scale = short_side / min(width, height)
  size = (max(short_side, round(width * scale)), max(short_side, round(height * scale)))
  if size == image.size:
    return image
  return image.resize(size, Image.Resampling.BILINEAR if scale > 1 else Image.Resampling.LANCZOS,
                      reducing_gap=None if scale > 1 else 3.0)


def mean_chroma(rgb, xp=np):
  """Mean CIE chroma sqrt(a² + b²) of a uint8 RGB image, measured on a ≤64-pixel thumbnail."""
  step = max(1, math.ceil(max(rgb.shape[:2]) / 64))
  thumb = rgb[::step, ::step].astype(np.float32) / 255.0
  ab = color.rgb_to_lab(thumb, xp=xp)[..., 1:]
  return float(np.sqrt((ab ** 2).sum(-1)).mean())
