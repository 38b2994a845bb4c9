"""The web page of ``colorjax serve`` (Gradio): people drop photos and get them colorized.

Each photo is colorized by every model given (a run or an exported file) at its full
resolution, with its own L, as ``colorize`` does, and shown against the original on a
before/after slider, in a gallery per model (PNG downloads), and in a table of its figures:
colourfulness, and the ab error where the photo was in colour. Requests from several people are
batched: Gradio's queue hands the colorize function up to ``batch_size`` requests at once, and
their photos go through each network together. A file that is not a usable image (text, a
truncated JPEG, a decompression bomb: more than ``max_pixels``) gets a line in the table, never
an error page. The page loads nothing from other hosts and sends no analytics.
"""
import os

import numpy as np

from colorjax.core import color
from colorjax.data import images

# Where a photo counts as in colour (its mean |ab|), so that an ab error means something
COLOUR_CHROMA = 2.0
_SIDE_BY_SIDE = 'the first photo, before | after'


def _gradio():
  os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')
  try:
    import gradio  # noqa: PLC0415  (optional: the serve extra)
  except ImportError:
    from colorjax.core.validation import UserError  # noqa: PLC0415
    raise UserError("colorjax serve needs Gradio: pip install 'colorjax[serve]'.") from None
  return gradio


def colourfulness(rgb):
  """Hasler and Süsstrunk's colourfulness of uint8 RGB (0: gray), as ``evaluate`` reports it."""
  rgb = rgb.astype(np.float64)
  rg = rgb[..., 0] - rgb[..., 1]
  yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
  return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def figures(original, colorized):
  """{'colourfulness', 'ab_error' (None for a gray photo)} of one result; the ab error on
  every second pixel of each axis."""
  grid = (slice(None, None, 2),) * 2
  ab_in = color.rgb_to_lab(color.uint8_to_unit(original[grid], np.float32, np), np)[..., 1:]
  ab_out = color.rgb_to_lab(color.uint8_to_unit(colorized[grid], np.float32, np), np)[..., 1:]
  in_colour = np.abs(ab_in).mean() >= COLOUR_CHROMA
  return {'colourfulness': colourfulness(colorized),
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


def colorize_requests(models, uploads, resolutions, max_pixels):
  """The batched event: ``uploads[i]`` the files of request i, ``resolutions[i]`` its
  resolution (None: the default; an exported file keeps its own). Returns the decoded uploads
  and, per request, {'results': {name: [(upload index, colorized)]}, 'rows': table rows}."""
  resolutions = [r or models.default for r in resolutions]
  decoded = [[(os.path.basename(p), *read_upload(p, max_pixels)) for p in files or []]
             for files in uploads]
  answers = [{'results': {name: [] for name in models.makers}, 'rows': []} for _ in uploads]
  for name in models.makers:
    for resolution in sorted(set(resolutions)):
      todo = [(i, j) for i, files in enumerate(decoded) if resolutions[i] == resolution
              for j, (_, rgb, _) in enumerate(files) if rgb is not None]
      colorizer = models.get(name, resolution)
      outputs = colorizer.colorize([decoded[i][j][1] for i, j in todo])
      for (i, j), colorized in zip(todo, outputs):
        answers[i]['results'][name].append((j, colorized))
  for i, files in enumerate(decoded):
    for j, (filename, rgb, error) in enumerate(files):
      if error:
        answers[i]['rows'].append((filename, '–', f'not colorized: {error}', ''))
        continue
      for name in models.makers:
        colorized = dict(answers[i]['results'][name])[j]
        f = figures(rgb, colorized)
        ab = '–' if f['ab_error'] is None else f"{f['ab_error']:.2f}"
        answers[i]['rows'].append((filename, name, f"{f['colourfulness']:.1f}", ab))
  return decoded, answers


def table(rows):
  if not rows:
    return 'Drop photos above, then press **Colorize**.'
  lines = ['| photo | model | colourfulness | ab error (colour photos) |', '|---|---|---:|---:|']
  lines += [f'| {filename} | {name} | {a} | {b} |' for filename, name, a, b in rows]
  return '\n'.join(lines)


def build(models, resolutions, max_pixels, batch_size, title='colorjax'):
  """The Gradio Blocks of the page (not launched)."""
  gr = _gradio()
  names = list(models.makers)
  with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(300, 1800)) as page:
    gr.Markdown(f'# {title}\nDrop black-and-white (or colour) photos: each comes back '
                f'colorized at its own size by {", ".join(f"`{n}`" for n in names)}.')
    with gr.Row():
      uploads = gr.File(file_count='multiple', label='photos')
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
    report = gr.Markdown(table([]))

    def colorize(uploads_batch, resolution_batch):
      decoded, answers = colorize_requests(models, uploads_batch, resolution_batch, max_pixels)
      columns = [[] for _ in range(2 * len(names) + 1)]
      for files, answer in zip(decoded, answers):
        for k, name in enumerate(names):
          results = answer['results'][name]
          first = (files[results[0][0]][1], results[0][1]) if results else None
          columns[2 * k].append(first)
          columns[2 * k + 1].append([(image, files[j][0]) for j, image in results])
        columns[-1].append(table(answer['rows']))
      return columns

    button.click(colorize, [uploads, resolution], [*outputs, report], batch=True,
                 max_batch_size=batch_size, api_name='colorize')
  return page
