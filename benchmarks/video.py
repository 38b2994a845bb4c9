"""Films on this machine: frames/sec of ``colorize`` on a 480p film with a trained run, and the
flicker of frame-by-frame colour against ``--temporal=smooth`` at several strengths.

  python -m benchmarks.video --workdir=runs/demo

The film is made here from the bundled sample photos: 640x480 at 25 frames/s, three scenes of
``--seconds`` each (a slow pan across a photo, a still photo, a photo with a square moving
across it), film grain (Gaussian, sigma 4 grey levels) on every frame, H.264 at CRF 12. It is a
colour film, so each route's flicker is compared with the film's own and its ab error measured
(the network sees L only). Prints a Markdown table.
"""
import argparse
import os
import tempfile

import av
import numpy as np
from PIL import Image
from skimage import color as skcolor

from colorjax.data import sources
from colorjax.inference import Colorizer, temporal

SIZE = (480, 640)
DEFAULT = f'smooth (keep {temporal.KEEP}, the default)'
SMOOTHERS = {'none': ('none', None), 'smooth (keep 0.5)': ('smooth', 0.5),
             DEFAULT: ('smooth', temporal.KEEP), 'smooth (keep 0.9)': ('smooth', 0.9),
             'smooth (keep 0.97)': ('smooth', 0.97)}
SQUARE = 64   # the moving square's side (pixels); it moves 8 pixels a frame


def photo(name, size):
  image = Image.open(os.path.join(sources.samples_dir(), name)).convert('RGB')
  return np.asarray(image.resize((size[1], size[0]), Image.Resampling.LANCZOS))


def square_x(t, width):
  return (8 * t) % (width - SQUARE)


def moving_ab_error(film, colorized, seconds, rate=25):
  """Mean ab error inside the moving square (where smoothing would smear) over the third
  scene, and its trailing edge's 16 pixels behind it, where a smeared square would leave red."""
  errors = []
  with av.open(film) as a, av.open(colorized) as b:
    for i, (fa, fb) in enumerate(zip(a.decode(video=0), b.decode(video=0))):
      scene, t = divmod(i, rate * seconds)
      x = square_x(t, SIZE[1])
      if scene != 2 or t == 0 or x < 16:
        continue
      region = (slice(200, 200 + SQUARE), slice(x - 16, x + SQUARE))
      lab_a, lab_b = (skcolor.rgb2lab(f.to_ndarray(format='rgb24')[region] / 255.0)
                      for f in (fa, fb))
      errors.append(np.abs(lab_a[..., 1:] - lab_b[..., 1:]).mean())
  return float(np.mean(errors))


def write_film(path, seconds, rate=25):
  height, width = SIZE
  wide = photo('astronaut.png', (height, width + 2 * rate * seconds))
  still, moving = photo('coffee.png', SIZE), photo('chelsea.png', SIZE)
  grain = np.random.default_rng(0)
  with av.open(path, 'w') as container:
    stream = container.add_stream('libx264', rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
    stream.options = {'crf': '12'}
    for i in range(3 * rate * seconds):
      scene, t = divmod(i, rate * seconds)
      if scene == 0:
        rgb = wide[:, 2 * t:2 * t + width]
      elif scene == 1:
        rgb = still
      else:
        rgb = moving.copy()
        x = square_x(t, width)
        rgb[200:200 + SQUARE, x:x + SQUARE] = (200, 30, 30)
      noisy = np.clip(rgb + grain.normal(0, 4, rgb.shape), 0, 255).astype(np.uint8)
      frame = av.VideoFrame.from_ndarray(noisy, format='rgb24')
      frame.pts = i
      container.mux(stream.encode(frame))
    container.mux(stream.encode())


def frame(path, index):
  with av.open(path) as container:
    for i, decoded in enumerate(container.decode(video=0)):
      if i == index:
        return decoded.to_ndarray(format='rgb24')
  raise ValueError(f'{path} has no frame {index}')


def write_still(path, film, colorized, index):
  gray = np.asarray(Image.fromarray(frame(film, index)).convert('L').convert('RGB'))
  Image.fromarray(np.concatenate([gray, frame(colorized, index)], axis=1)).save(path, quality=88)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--resolution', type=int)
  parser.add_argument('--seconds', type=int, default=4, help='per scene')
  parser.add_argument('--batch_size', type=int, default=8)
  parser.add_argument('--still', help='also write frame --still_frame of the film in gray and '
                      'colorized (--temporal=smooth) side by side to this image file')
  parser.add_argument('--still_frame', type=int, default=130)
  args = parser.parse_args()
  colorizer = Colorizer.from_run(args.workdir, resolution=args.resolution,
                                 batch_size=args.batch_size)
  rows = []
  with tempfile.TemporaryDirectory() as folder:
    film = os.path.join(folder, 'film.mp4')
    write_film(film, args.seconds)
    colorizer.colorize_video(film, os.path.join(folder, 'warm-up.mp4'))   # compiles
    for name, (method, keep) in SMOOTHERS.items():
      smoother = temporal.Smoother(method, **({'keep': keep} if keep else {}))
      report = colorizer.colorize_video(film, os.path.join(folder, f'{method}{keep}.mp4'),
                                        temporal=smoother)
      moving = moving_ab_error(film, os.path.join(folder, f'{method}{keep}.mp4'), args.seconds)
      rows.append((name, report, moving))
    if args.still:
      write_still(args.still, film, os.path.join(folder, f'smooth{temporal.KEEP}.mp4'),
                  args.still_frame)
  print(f'{args.workdir} at {colorizer.resolution}², {SIZE[1]}x{SIZE[0]}, '
        f'{rows[0][1].frames} frames, batch {args.batch_size}\n')
  print('| temporal | frames/s | flicker | vs the film\'s own | ab error | ab error at the moving '
        'square | cuts |\n|---|---:|---:|---:|---:|---:|---:|')
  for name, r, moving in rows:
    print(f'| {name} | {r.frames_per_sec:.1f} | {r.flicker:.3f} | '
          f'{r.flicker / r.original_flicker:.2f}× | {r.ab_error:.2f} | {moving:.2f} | {r.cuts} |')


if __name__ == '__main__':
  main()
