"""Colorize images from Python with a trained run or an exported file.

  from colorjax.inference import Colorizer
  colorizer = Colorizer.from_run('runs/demo')   # or .from_exported('demo.cjx' / 'demo.onnx')
  colour = colorizer('old_photo.jpg')           # uint8 RGB at the photo's own size
  colours = colorizer.colorize([gray_array, pil_image])  # several at once, batched
  colorizer.colorize_video('newsreel.mp4', 'colour.mp4')  # a film, with its sound

The network sees each image's L channel at ``resolution`` (long side, padded to a square, so
every batch has one shape and compiles once); the predicted ab is upsampled to the original
size and joined with the original full-resolution L, so the result keeps the input's size and
detail. No TensorFlow here.
"""
import jax
import numpy as np
from PIL import Image

from colorjax.core import color
from colorjax.core.validation import UserError
from colorjax.data import images
from colorjax.inference import artifact, onnx_model, video
from colorjax.training import runs


def network_input(rgb, resolution):
  """Long side -> resolution, padded (edge) to a square: (L [res, res, 1], (h, w) used)."""
  height, width = rgb.shape[:2]
  scale = resolution / max(height, width)
  size = (max(1, round(width * scale)), max(1, round(height * scale)))
  small = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))
  L = color.rgb_to_lab(color.uint8_to_unit(small, dtype=np.float32, xp=np), xp=np)[..., :1]
  padded = np.pad(L, ((0, resolution - size[1]), (0, resolution - size[0]), (0, 0)), 'edge')
  return padded, (size[1], size[0])


def _upsample(ab, size):
  """ab [h, w, 2] -> [H, W, 2] (bilinear, per channel, float)."""
  return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(ab[..., c]), 'F')
                              .resize((size[1], size[0]), Image.Resampling.BILINEAR))
                   for c in range(2)], axis=-1)


def full_resolution(rgb, ab_small, used):
  """Original L joined with the predicted ab upsampled to the original size -> uint8 RGB."""
  L = color.rgb_to_lab(color.uint8_to_unit(rgb, dtype=np.float32, xp=np), xp=np)[..., :1]
  ab = _upsample(ab_small[:used[0], :used[1]], rgb.shape[:2])
  return np.asarray(color.unit_to_uint8(color.join_l_ab(L, ab, xp=np), xp=np))


def as_rgb(image, max_pixels=images.DEFAULT_MAX_PIXELS):
  """A file path, a PIL image or a uint8 array ([H, W] gray or [H, W, 3]) -> uint8 RGB."""
  if isinstance(image, str):
    return images.decode(images.read_bytes(image), max_pixels=max_pixels)
  if isinstance(image, Image.Image):
    return np.asarray(images.to_rgb(image))
  array = np.asarray(image)
  if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3
                                                          and array.shape[-1] == 3)):
    raise UserError(f'an image array must be uint8 [H, W] or [H, W, 3]; got {array.dtype} '
                    f'{list(array.shape)}.')
  return np.repeat(array[..., None], 3, -1) if array.ndim == 2 else array


class Colorizer:
  """``colorizer(image)`` -> uint8 RGB of the image's size; ``colorize(images)`` for many.

  ``predict(L [B, R, R, 1]) -> ab`` is the network at ``resolution`` R; calls go in batches of
  ``batch_size`` (the last padded), so one shape compiles once.
  """

  def __init__(self, predict, resolution, batch_size=8):
    if batch_size < 1:
      raise UserError(f'batch_size={batch_size} is not allowed; use 1 or more.')
    self.predict, self.resolution, self.batch_size = predict, resolution, batch_size

  @classmethod
  def from_run(cls, workdir=None, checkpoint=None, resolution=None, batch_size=8):
    """A training run's latest checkpoint (or ``checkpoint``, RUN/checkpoints/N), at
    ``resolution`` (default: the run's image_size)."""
    return cls.for_run(runs.load(workdir, checkpoint), resolution, batch_size)

  @classmethod
  def for_run(cls, run, resolution=None, batch_size=8):
    """A loaded runs.Run, at ``resolution`` (default: its image_size)."""
    resolution = resolution or run.config.image_size
    runs.check_resolution(run, resolution)
    predict = jax.jit(run.task.predict)
    return cls(lambda L: predict(run.state, L), resolution, batch_size)

  @classmethod
  def from_exported(cls, path, resolution=None, batch_size=8):
    """A file written by ``colorjax export`` (its resolution is fixed): a ``.onnx`` file runs
    in ONNX Runtime (its lab graph), any other is a ``jax.export`` file."""
    if str(path).lower().endswith('.onnx'):
      exported = onnx_model.OnnxModel(path)
      if exported.graph != 'lab':
        raise UserError(f'{path} holds the RGB graph (uint8 RGB in and out), which cannot keep '
                        "a photo's full-resolution L; export the run with --graph=lab for "
                        'colorize.')
    else:
      exported = artifact.Exported(path)
    if resolution not in (None, exported.resolution):
      raise UserError(f'--resolution={resolution} is not allowed; {path} was exported at '
                      f'{exported.resolution} (export it again with --resolution={resolution}).')
    return cls(exported, exported.resolution, batch_size)

  full_resolution = staticmethod(full_resolution)

  def network_ab(self, rgbs):
    """At most ``batch_size`` uint8 RGB images -> [(L [R, R, 1], ab [R, R, 2], (h, w) of the
    image within the square)] at the network's resolution, from one network call."""
    L = np.zeros((self.batch_size, self.resolution, self.resolution, 1), np.float32)
    used = []
    for i, rgb in enumerate(rgbs):
      L[i], size = network_input(rgb, self.resolution)
      used.append(size)
    ab = np.asarray(jax.device_get(self.predict(L)))
    return list(zip(L, ab, used))

  def colorize(self, rgbs):
    """uint8 RGB images (any sizes, gray allowed as R = G = B) -> their colorized versions."""
    results = []
    for start in range(0, len(rgbs), self.batch_size):
      chunk = rgbs[start:start + self.batch_size]
      results += [full_resolution(rgb, ab, size)
                  for rgb, (_, ab, size) in zip(chunk, self.network_ab(chunk))]
    return results

  def colorize_video(self, src, dst, temporal='smooth', codec='h264', crf=video.DEFAULT_CRF,
                     max_pixels=None, progress=None, overwrite=False):
    """The film ``src`` colorized into the new file ``dst``, with its sound, timestamps and
    rotation, each frame at its own size with its own L; ``temporal`` 'smooth' (steadier colour,
    see colorjax/inference/temporal.py) or 'none'; ``codec`` h264, vp9 or ffv1 at ``crf``;
    ``progress`` a tqdm bar. Returns a video.Report (frames, flicker, ...)."""
    return video.colorize_video(self, src, dst, temporal_method=temporal, codec=codec, crf=crf,
                                max_pixels=max_pixels, progress=progress, overwrite=overwrite)

  def __call__(self, image):
    """One image (a path, a PIL image or a uint8 array) -> uint8 RGB [H, W, 3]."""
    return self.colorize([as_rgb(image)])[0]
