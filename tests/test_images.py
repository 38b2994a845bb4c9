"""The one decoder on every kind of file people have, good and bad."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from colorjax.data import images
from conftest import colour_image


def encode(image, fmt, **kwargs):
  buffer = io.BytesIO()
  image.save(buffer, fmt, **kwargs)
  return buffer.getvalue()


def png_claiming_size(width, height):
  """A valid 1x1 PNG whose IHDR is rewritten to claim width x height (a decompression bomb)."""
  data = bytearray(encode(Image.new('RGB', (1, 1)), 'PNG'))
  ihdr = 8  # after the signature: length(4) type(4) data(13) crc(4)
  data[ihdr + 8:ihdr + 16] = struct.pack('>II', width, height)
  crc = zlib.crc32(bytes(data[ihdr + 4:ihdr + 21]))
  data[ihdr + 21:ihdr + 25] = struct.pack('>I', crc)
  return bytes(data)


RGB = Image.fromarray(colour_image(0))


@pytest.mark.parametrize('fmt', ['PNG', 'JPEG', 'BMP', 'WEBP', 'GIF'])
def test_colour_formats_decode_to_uint8_rgb(fmt):
  rgb = images.decode(encode(RGB, fmt))
  assert rgb.dtype == np.uint8 and rgb.shape == (48, 40, 3)
  lossy_error = {'PNG': 0, 'BMP': 0, 'WEBP': 10, 'JPEG': 10, 'GIF': 20}[fmt]
  assert np.abs(rgb.astype(int) - colour_image(0)).mean() <= lossy_error


def test_cmyk_jpeg_becomes_rgb():
  rgb = images.decode(encode(RGB.convert('CMYK'), 'JPEG', quality=95))
  assert rgb.shape == (48, 40, 3)
  assert np.abs(rgb.astype(int) - colour_image(0)).mean() < 20


def test_16_bit_png_is_scaled_not_clipped():
  gray16 = np.array([[0, 257 * 128, 65535]], dtype=np.uint16)
  rgb = images.decode(encode(Image.fromarray(gray16), 'PNG'))
  np.testing.assert_array_equal(rgb[0, :, 0], [0, 128, 255])
  assert (rgb[..., 0] == rgb[..., 2]).all()


def test_alpha_is_composited_over_white():
  rgba = np.zeros((2, 2, 4), np.uint8)
  rgba[0, 0] = (255, 0, 0, 255)  # opaque red; the rest fully transparent black
  rgb = images.decode(encode(Image.fromarray(rgba, 'RGBA'), 'PNG'))
  np.testing.assert_array_equal(rgb[0, 0], [255, 0, 0])
  np.testing.assert_array_equal(rgb[1, 1], [255, 255, 255])


def test_palette_and_grayscale_become_three_channels():
  palette = images.decode(encode(RGB.convert('P'), 'PNG'))
  assert palette.shape == (48, 40, 3)
  gray = images.decode(encode(RGB.convert('L'), 'JPEG'))
  assert gray.shape == (48, 40, 3) and (gray[..., 0] == gray[..., 1]).all()


def test_animated_gif_gives_its_first_frame():
  frames = [Image.new('RGB', (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
  data = encode(frames[0], 'GIF', save_all=True, append_images=frames[1:], duration=100)
  rgb = images.decode(data)
  assert rgb.shape == (8, 8, 3) and rgb[..., 0].min() > 200 and rgb[..., 2].max() < 50


def test_one_pixel_image_decodes():
  assert images.decode(encode(Image.new('RGB', (1, 1), (10, 20, 30)), 'PNG')).shape == (1, 1, 3)


@pytest.mark.parametrize('data, reason', [
    (b'', 'empty'),
    (b'this is a text file, not a JPEG', 'undecodable'),
    (encode(RGB, 'JPEG')[:300], 'undecodable'),
    (encode(RGB, 'PNG')[:200], 'undecodable'),
    (png_claiming_size(100_000, 100_000), 'too large'),
])
def test_bad_files_raise_image_error_with_a_reason(data, reason):
  with pytest.raises(images.ImageError) as error:
    images.decode(data)
  assert error.value.reason == reason


def test_pixel_limit_is_checked_from_the_header():
  data = encode(RGB, 'PNG')
  assert images.decode(data, max_pixels=48 * 40).shape == (48, 40, 3)
  with pytest.raises(images.ImageError, match='too large'):
    images.decode(data, max_pixels=48 * 40 - 1)


def test_large_images_are_reduced_while_decoding_but_cover_the_request():
  big = Image.fromarray(colour_image(1, size=(400, 600)))
  for fmt in ('JPEG', 'PNG'):
    rgb = images.decode(encode(big, fmt), min_short_side=64)
    assert 64 <= min(rgb.shape[:2]) < 128
    assert abs(rgb.shape[1] / rgb.shape[0] - 1.5) < 0.05


def test_unreadable_path_is_reported(tmp_path):
  with pytest.raises(images.ImageError, match='unreadable'):
    images.read_bytes(tmp_path / 'missing.jpg')


def test_mean_chroma_separates_gray_from_colour():
  assert images.mean_chroma(np.asarray(RGB.convert('L').convert('RGB'))) < 1.0
  assert images.mean_chroma(colour_image(0)) > 20


def test_only_plain_jpegs_are_left_to_tensorflow():
  photo = Image.fromarray(colour_image(2, size=(400, 600)))
  jpeg = encode(photo, 'JPEG')
  plain_short = lambda data, **kw: images.inspect(io.BytesIO(data), **kw)
  assert plain_short(jpeg) == 400
  assert plain_short(jpeg[:-300]) == 0                                   # truncated
  assert plain_short(encode(photo.convert('CMYK'), 'JPEG')) == 0
  assert plain_short(encode(photo, 'PNG')) == 0
  exif = Image.Exif()
  exif[images.ORIENTATION] = 6
  assert plain_short(encode(photo, 'JPEG', exif=exif)) == 0
  with pytest.raises(images.ImageError, match='too large'):
    plain_short(jpeg, max_pixels=1000)
  with pytest.raises(images.ImageError, match='empty'):
    plain_short(b'')


def test_dct_ratio_is_the_largest_that_still_covers():
  assert images.dct_ratio(400, 100) == 4    # 400 / 4 = 100 still covers 100
  assert images.dct_ratio(400, 101) == 2
  assert images.dct_ratio(400, 10) == 8
  assert images.dct_ratio(400, 1000) == 1
  assert images.dct_ratio(401, 101) == 4  # libjpeg rounds scaled sizes up
