"""``colorjax serve``: a web page where people drop photos and films and get them colorized.

  colorjax serve --workdir=runs/demo                       # http://127.0.0.1:7860
  colorjax serve --workdir=runs/a --workdir=runs/b --exported=model.onnx --port=8080

Each photo comes back at its own size with its own L, from every model given, side by side,
with its colourfulness and (for colour photos) ab error; colorjax/serve/page.py. The models are
loaded and compiled before the address is printed. It listens on 127.0.0.1 (this machine only)
unless --host says otherwise; uploads are limited in bytes and pixels; nothing is written into a
run's folder, and Gradio's temporary files are deleted as they age and when the server stops.
"""
import os

from absl import flags, logging

from colorjax.core import validation
from colorjax.data import images
from colorjax.data import video as video_data
from colorjax.inference import Colorizer
from colorjax.serve import page
from colorjax.training import runs

FLAGS = flags.FlagValues()  # this command's own flags (colorjax SUB --help lists them)

_WORKDIRS = flags.DEFINE_multi_string('workdir', [], 'A trained run (repeatable).',
                                      flag_values=FLAGS)
_EXPORTED = flags.DEFINE_multi_string('exported', [], 'A file from colorjax export (.cjx or '
                                      '.onnx; repeatable).', flag_values=FLAGS)
_HOST = flags.DEFINE_string('host', '127.0.0.1', 'Address to listen on (0.0.0.0: every '
                            'network interface).', flag_values=FLAGS)
_PORT = flags.DEFINE_integer('port', 7860, 'Port to listen on.', flag_values=FLAGS)
_RESOLUTION = flags.DEFINE_integer('resolution', None, "Default network resolution (default: "
                                   "the first run's image_size).", flag_values=FLAGS)
_BATCH = flags.DEFINE_integer('batch_size', 8, 'Requests colorized together at most.',
                              flag_values=FLAGS)
_MAX_UPLOAD = flags.DEFINE_integer('max_upload_mb', 50, 'Largest upload, in MB.',
                                   flag_values=FLAGS)
_MAX_PIXELS = flags.DEFINE_integer('max_pixels', images.DEFAULT_MAX_PIXELS,
                                   'Photos with more pixels are refused.', flag_values=FLAGS)


def model_makers():
  """{name: make(resolution) -> Colorizer} for every --workdir and --exported, the resolutions
  the page offers, and the default one (the first model's own)."""
  makers, choices, defaults = {}, set(), []
  for workdir in _WORKDIRS.value:
    run = runs.load(workdir)
    if _RESOLUTION.value:
      runs.check_resolution(run, _RESOLUTION.value)
    name = os.path.basename(os.path.normpath(workdir))
    makers[name] = lambda r, run=run: Colorizer.for_run(run, r)
    size, stride = run.config.image_size, run.task.total_stride(run.config)
    choices |= {s for s in (size // 2, size, 2 * size, 4 * size) if s % stride == 0 and s > 0}
    defaults.append(size)
  for path in _EXPORTED.value:
    colorizer = Colorizer.from_exported(path)
    makers[os.path.basename(path)] = lambda r, c=colorizer: c
    choices.add(colorizer.resolution)
    defaults.append(colorizer.resolution)
  if len(makers) != len(_WORKDIRS.value) + len(_EXPORTED.value):
    raise validation.UserError('two models have the same name; give each run or file a '
                               'distinct folder or file name.')
  return makers, sorted(choices), defaults[0]


def main(argv):
  if len(argv) > 1 or not (_WORKDIRS.value or _EXPORTED.value):
    raise validation.UserError('give --workdir=RUN and/or --exported=FILE (each repeatable), '
                               'and flags only.')
  for flag, value, low in (('port', _PORT.value, 1), ('batch_size', _BATCH.value, 1),
                           ('max_upload_mb', _MAX_UPLOAD.value, 1)):
    if value < low or (flag == 'port' and value > 65535):
      raise validation.UserError(f'--{flag}={value} is not allowed; use 1 or more'
                                 f'{" (at most 65535)" if flag == "port" else ""}.')
  makers, resolutions, default = model_makers()
  if not _WORKDIRS.value and _RESOLUTION.value not in (None, *resolutions):
    raise validation.UserError(f'--resolution={_RESOLUTION.value} is not allowed; the exported '
                               f'files take {", ".join(map(str, resolutions))}.')
  default = _RESOLUTION.value or default
  models = page.Models(makers, default)
  models.warm_up()
  try:
    video_data.av()
    films = page.Films()
  except validation.UserError:   # no PyAV: photos only
    films = None
  blocks = page.build(models, sorted({*resolutions, default}), _MAX_PIXELS.value, _BATCH.value,
                      films)
  blocks.queue(default_concurrency_limit=1)
  where = ('this machine only; --host=0.0.0.0 serves every network interface'
           if _HOST.value in ('127.0.0.1', 'localhost') else 'every client that can reach it')
  logging.info('Serving %s on http://%s:%d (%s).', ', '.join(makers), _HOST.value, _PORT.value,
               where)
  blocks.launch(server_name=_HOST.value, server_port=_PORT.value, share=False,
                max_file_size=_MAX_UPLOAD.value * 10 ** 6, allowed_paths=[], quiet=True,
                show_error=False, footer_links=[], prevent_thread_lock=True)
  print(f'Serving on http://{_HOST.value}:{_PORT.value} ({where}); Ctrl-C stops it.', flush=True)
  try:
    blocks.block_thread()
  finally:
    blocks.close()
