"""Reading any image file people have into uint8 RGB, safely: the one decoder of colorjax.

Used by the tf.data pipeline (through ``tf.numpy_function``) and by the commands that read
people's photos. Pillow does the decoding: it reads every format we accept (JPEG including CMYK,
PNG of any bit depth, palette and alpha images, BMP, GIF, WebP), checks the size in the header
before decoding anything, and lets JPEG decode straight to a reduced size (DCT scaling).
No TensorFlow here.
"""
import io
import math
import os
import stat
import warnings

import numpy as np
from PIL import Image, ImageOps

from colorjax.core import color

# Our own max_pixels check refuses oversized images; Pillow's warning below its hard limit
# would only repeat it.
warnings.filterwarnings('ignore', category=Image.DecompressionBombWarning)

ORIENTATION = 0x0112  # the EXIF tag
EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.webp')
DEFAULT_MAX_PIXELS = 64_000_000


class ImageError(Exception):
  """An image that cannot be used; ``reason`` is a short tag for the skip counts."""

  def __init__(self, reason, detail):
    super().__init__(f'{reason}: {detail}')
    self.reason = reason


def _open_regular(path):
  """The file opened for reading; ImageError('unreadable') for a missing or forbidden path, or
  one that is not a regular file (a FIFO or device named .jpg would block a reader forever)."""
  try:
    if not stat.S_ISREG(os.stat(path).st_mode):
      raise ImageError('unreadable', 'not a regular file')
    return open(path, 'rb')
  except OSError as e:
    raise ImageError('unreadable', e.strerror or str(e)) from None


def read_bytes(path):
  """The file's bytes, or ImageError('unreadable') (see _open_regular)."""
  with _open_regular(path) as f:
    try:
      return f.read()
    except OSError as e:
      raise ImageError('unreadable', e.strerror or str(e)) from None


def to_rgb(image):
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


def decode(data, *, min_short_side=None, max_pixels=DEFAULT_MAX_PIXELS):
  """Encoded image bytes -> uint8 [H, W, 3] RGB.

  With ``min_short_side``, an image larger than needed is reduced cheaply while decoding (JPEG
  DCT scaling, else an integer box reduction) to a short side in [min_short_side,
  2 × min_short_side); the exact resize is left to the caller. The first frame of an animation
  is used and EXIF orientation is applied. Raises ImageError with reason 'empty', 'too large'
  (more than ``max_pixels`` pixels in the header: a decompression bomb is refused before
  decoding) or 'undecodable'.
  """
  if not data:
    raise ImageError('empty', 'zero bytes')
  try:
    image = Image.open(io.BytesIO(data))
    width, height = image.size
    if width * height > max_pixels:
      raise ImageError('too large', f'{width}x{height} pixels is over the limit of {max_pixels}')
    if min_short_side:
      image.draft('RGB', (min_short_side, min_short_side))  # JPEG only; no-op otherwise
    image.load()
    image = to_rgb(ImageOps.exif_transpose(image))
  except ImageError:
    raise
  except Image.DecompressionBombError as e:
    raise ImageError('too large', str(e)) from None
  except Image.UnidentifiedImageError:
    raise ImageError('undecodable', 'not an image format Pillow reads') from None
  except Exception as e:  # Pillow raises many types for corrupt data.
    raise ImageError('undecodable', f'{type(e).__name__}: {e}') from None
  if min_short_side:
    factor = min(image.size) // min_short_side
    if factor >= 2:
      image = image.reduce(factor)
  return np.asarray(image, dtype=np.uint8)


def inspect(file, max_pixels=DEFAULT_MAX_PIXELS):
  """Reads only the header (and the last bytes) of an image file object; returns the short
  side of a plain JPEG, one that TensorFlow's own decoder handles as well as Pillow: RGB or
  gray (not CMYK), no EXIF rotation, with an end marker (truncated files go to Pillow, which
  reports them). Returns 0 for any other image. Raises ImageError as ``decode`` does for
  empty, unparsable or oversized images.
  """
  size = file.seek(0, io.SEEK_END)
  if size == 0:
    raise ImageError('empty', 'zero bytes')
  file.seek(0)
  try:
    image = Image.open(file)
    width, height = image.size
    plain = (image.format == 'JPEG' and image.mode in ('RGB', 'L')
             and image.getexif().get(ORIENTATION, 1) == 1)
  except Image.DecompressionBombError as e:
    raise ImageError('too large', str(e)) from None
  except Exception as e:  # Pillow raises many types for corrupt data.
    raise ImageError('undecodable', f'{type(e).__name__}: {e}') from None
  if width * height > max_pixels:
    raise ImageError('too large', f'{width}x{height} pixels is over the limit of {max_pixels}')
  file.seek(max(size - 64, 0))
  ends_well = file.read().rstrip(b'\0').endswith(b'\xff\xd9')
  return min(width, height) if plain and ends_well else 0


def inspect_path(path, max_pixels=DEFAULT_MAX_PIXELS):
  """``inspect`` of a file by path; ImageError('unreadable') when it cannot be read."""
  with _open_regular(path) as f:
    try:
      return inspect(f, max_pixels)
    except OSError as e:
      raise ImageError('unreadable', e.strerror or str(e)) from None


def dct_ratio(short_side, min_short_side):
  """The largest JPEG DCT scale (1, 2, 4 or 8) whose output still covers min_short_side."""
  return max(r for r in (1, 2, 4, 8) if r == 1 or -(-short_side // r) >= min_short_side)


def mean_chroma(rgb, xp=np):
  """Mean CIE chroma sqrt(a² + b²) of a uint8 RGB image, measured on a ≤64-pixel thumbnail."""
  step = max(1, math.ceil(max(rgb.shape[:2]) / 64))
  thumb = rgb[::step, ::step].astype(np.float32) / 255.0
  ab = color.rgb_to_lab(thumb, xp=xp)[..., 1:]
  return float(np.sqrt((ab ** 2).sum(-1)).mean())
