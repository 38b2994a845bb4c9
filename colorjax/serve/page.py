"""The web page of ``colorjax serve`` (Gradio): people drop photos (and films) and get them
colorized.

Each photo is colorized by every model given (a run or an exported file) at its full
resolution, with its own L, as ``colorize`` does, and shown against the original on a
before/after slider, in a gallery per model (PNG downloads), and in a table of its figures:
colourfulness, and the ab error where the photo was in colour. Requests from several people are
batched: Gradio's queue hands the colorize function up to ``batch_size`` requests at once, and
their photos go through each network together; films (where PyAV is installed) are colorized
as ``colorize`` does them, one at a time, for download. A file that is not a usable image (text, a
truncated JPEG, a decompression bomb: more than ``max_pixels``) gets a line in the table, never
an error page. The page loads nothing from other hosts and sends no analytics.
"""
import os
import tempfile
import time
import uuid

import numpy as np

from colorjax.core import color, metrics
from colorjax.core.validation import UserError
from colorjax.data import images
from colorjax.data import video as video_data
from colorjax.data.video import VideoError

_SIDE_BY_SIDE = 'the first photo, before | after'
FILM_MAX_AGE = 1800   # seconds a colorized film is kept for its download


def _gradio():
  os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')
  try:
    import gradio  # noqa: PLC0415  (optional: the serve extra)
  except ImportError:
    raise UserError("colorjax serve needs Gradio: pip install 'colorjax[serve]'.") from None
  return gradio


def figures(original, colorized):
  """{'colourfulness', 'ab_error' (None for a gray photo)} of one result; the ab error on
  every second pixel of each axis."""
  grid = (slice(None, None, 2),) * 2
  ab_in = color.rgb_to_lab(color.uint8_to_unit(original[grid], np.float32, np), np)[..., 1:]
  ab_out = color.rgb_to_lab(color.uint8_to_unit(colorized[grid], np.float32, np), np)[..., 1:]
  in_colour = np.abs(ab_in).mean() >= metrics.COLOUR_CHROMA
  colourfulness = metrics.colourfulness(colorized[None] / 255.0, xp=np)[0]
  return {'colourfulness': float(colourfulness),
          'ab_error': float(np.abs(ab_out - ab_in).mean()) if in_colour else None}


class Models:
  """The models of the page: {name: {resolution: Colorizer}}, each run's Colorizer made once per
  resolution asked for (``make(resolution)``), an exported file's at its own only."""

  def __init__(self, makers, default_resolution):
    self.makers, self.default = makers, default_resolution
    self.colorizers = {name: {} for name in makers}

  def get(self, name, resolution):
    if resolution not in self.colorizers[name]:
      self.colorizers[name][resolution] = self.makers[name](resolution)
    return self.colorizers[name][resolution]

  def warm_up(self):
    """Compiles every model at the default resolution (before the page is served)."""
    for name in self.makers:
      self.get(name, self.default).colorize([np.full((8, 8, 3), 128, np.uint8)])


def read_upload(path, max_pixels):
  """An uploaded file -> (uint8 RGB, None) or (None, the reason it cannot be used)."""
  try:
    return images.decode(images.read_bytes(path), max_pixels=max_pixels), None
  except images.ImageError as e:
    return None, str(e)


class Films:
  """Colorized films, in a temporary folder of the server's (Gradio copies each into its own
  cache to serve it): files older than ``max_age`` seconds are deleted at each request, the
  folder when the server stops."""

  def __init__(self, max_age=FILM_MAX_AGE):
    self.folder, self.max_age = tempfile.TemporaryDirectory(prefix='colorjax-serve-'), max_age

  def new_path(self, name, upload):
    for old in os.scandir(self.folder.name):
      if time.time() - old.stat().st_mtime > self.max_age:
        os.remove(old.path)
    stem = os.path.splitext(os.path.basename(upload))[0]
    return os.path.join(self.folder.name, f'{uuid.uuid4().hex[:8]}-{name}-{stem}.mp4')


def _colorize_film(colorizer, path, out, max_pixels):
  """(the film's table cell, its ab error cell), or raises VideoError/UserError."""
  report = colorizer.colorize_video(path, out, max_pixels=max_pixels)
  ab = '–' if report.ab_error is None else f'{report.ab_error:.2f}'
  return f'film: {report.frames} frames, flicker {report.flicker:.3f}', ab


def colorize_requests(models, uploads, resolutions, max_pixels, films=None):
  """The batched event: ``uploads[i]`` the files of request i, ``resolutions[i]`` its
  resolution (None: the default; an exported file keeps its own). Photos go through each network
  together; films (``films``, a Films, or they are refused) one by one. Returns the decoded
  uploads and, per request, {'results': {name: [(upload index, colorized)]}, 'films': {name:
  [paths]}, 'rows': table rows}."""
  resolutions = [r or models.default for r in resolutions]
  decoded = [[(os.path.basename(p), None, None, p) if video_data.is_video(p)
              else (os.path.basename(p), *read_upload(p, max_pixels), None)
              for p in files or []] for files in uploads]
  answers = [{'results': {name: [] for name in models.makers},
              'films': {name: [] for name in models.makers}, 'rows': []} for _ in uploads]
  for name in models.makers:
    for resolution in sorted(set(resolutions)):
      todo = [(i, j) for i, files in enumerate(decoded) if resolutions[i] == resolution
              for j, (_, rgb, _, _) in enumerate(files) if rgb is not None]
      colorizer = models.get(name, resolution)
      outputs = colorizer.colorize([decoded[i][j][1] for i, j in todo])
      for (i, j), colorized in zip(todo, outputs):
        answers[i]['results'][name].append((j, colorized))
  for i, files in enumerate(decoded):
    for j, (filename, rgb, error, film) in enumerate(files):
      if error:
        answers[i]['rows'].append((filename, '–', f'not colorized: {error}', ''))
      elif film and films is None:
        answers[i]['rows'].append((filename, '–', 'not colorized: this server takes photos '
                                   'only', ''))
      elif film:
        for name in models.makers:
          out = films.new_path(name, film)
          try:
            cells = _colorize_film(models.get(name, resolutions[i]), film, out, max_pixels)
          except (VideoError, UserError) as e:
            cells = (f'not colorized: {e}', '')
          else:
            answers[i]['films'][name].append(out)
          answers[i]['rows'].append((filename, name, *cells))
      else:
        for name in models.makers:
          f = figures(rgb, dict(answers[i]['results'][name])[j])
          ab = '–' if f['ab_error'] is None else f"{f['ab_error']:.2f}"
          answers[i]['rows'].append((filename, name, f"colourfulness {f['colourfulness']:.1f}",
                                     ab))
  return decoded, answers


def table(rows):
  if not rows:
    return 'Drop photos or films above, then press **Colorize**.'
  lines = ['| file | model | result | ab error (colour inputs) |', '|---|---|---|---:|']
  lines += [f'| {filename} | {name} | {a} | {b} |' for filename, name, a, b in rows]
  return '\n'.join(lines)


def build(models, resolutions, max_pixels, batch_size, films=None, title='colorjax'):
  """The Gradio Blocks of the page (not launched); ``films`` a Films where PyAV is there."""
  gr = _gradio()
  names = list(models.makers)
  with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(300, FILM_MAX_AGE)) as page:
    what = 'photos or films' if films else 'photos'
    gr.Markdown(f'# {title}\nDrop black-and-white (or colour) {what}: each comes back '
                f'colorized at its own size by {", ".join(f"`{n}`" for n in names)}.')
    with gr.Row():
      uploads = gr.File(file_count='multiple', label=what)
      resolution = gr.Dropdown(resolutions, value=models.default, label='network resolution '
                               '(higher: more detail, slower)', interactive=len(resolutions) > 1)
    button = gr.Button('Colorize', variant='primary')
    outputs = []
    with gr.Row():
      for name in names:
        with gr.Column():
          outputs.append(gr.ImageSlider(label=f'{name}: {_SIDE_BY_SIDE}', type='numpy',
                                        format='jpeg'))   # to look at; the PNGs are below
          outputs.append(gr.Gallery(label=f'{name}: colorized (PNG)', format='png',
                                    columns=4, height='auto', object_fit='contain',
                                    preview=False))
          outputs.append(gr.File(label=f'{name}: colorized films', file_count='multiple',
                                 visible=films is not None))
    report = gr.Markdown(table([]))

    def colorize(uploads_batch, resolution_batch):
      decoded, answers = colorize_requests(models, uploads_batch, resolution_batch, max_pixels,
                                           films)
      columns = [[] for _ in range(3 * len(names) + 1)]
      for files, answer in zip(decoded, answers):
        for k, name in enumerate(names):
          results = answer['results'][name]
          first = (files[results[0][0]][1], results[0][1]) if results else None
          columns[3 * k].append(first)
          columns[3 * k + 1].append([(image, files[j][0]) for j, image in results])
          columns[3 * k + 2].append(answer['films'][name] or None)
        columns[-1].append(table(answer['rows']))
      return columns

    button.click(colorize, [uploads, resolution], [*outputs, report], batch=True,
                 max_batch_size=batch_size, api_name='colorize')
  return page
