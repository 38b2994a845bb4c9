"""Colorize a film: frames decoded, batched onto the device, colorized and encoded as they go.

Three threads overlap: one decodes (PyAV) and converts frames to RGB, the caller's runs the
network and the temporal smoothing (``temporal``), one joins each frame's own full-resolution L
with its ab, encodes and muxes. Queues of two batches between them keep memory bounded for a
feature film. The output keeps the input's frame size, timestamps (so its frame rate, variable
included, and duration), display rotation and audio (copied as it is where the container takes
it, else re-encoded to AAC). It is written to ``OUTPUT.partial`` and renamed when complete.
"""
import dataclasses
import os
import queue
import threading
import time

import numpy as np

from colorjax.core import color, metrics
from colorjax.data import video as video_data
from colorjax.data.video import VideoError
from colorjax.inference import temporal

CODECS = {'h264': 'libx264', 'vp9': 'libvpx-vp9', 'ffv1': 'ffv1'}   # --video_codec: encoder
HIGHEST_CRF = {'h264': 51, 'vp9': 63}   # --crf's range, 0 to this (ffv1 is lossless: none)
DEFAULT_CRF = 18          # x264's "visually lossless": no banding in smooth gradients
_MUXERS = {'.mp4': 'mp4', '.m4v': 'mp4', '.mov': 'mov', '.mkv': 'matroska'}
_FLICKER_STRIDE = 4       # flicker and ab error are measured on every 4th pixel of each axis
# AAC needs a channel order; containers such as AVI give only a count
_NAMED_LAYOUTS = {1: 'mono', 2: 'stereo', 6: '5.1', 8: '7.1'}


def output_extension(relative, codec='h264'):
  """The output's container: the input's where it takes the codec, else .mp4 (.mkv for ffv1)."""
  ext = os.path.splitext(relative)[1].lower()
  if codec == 'ffv1':
    return '.mkv'
  return ext if ext in _MUXERS else '.mp4'


def partial_path(path):
  return path + '.partial'


@dataclasses.dataclass
class Report:
  """A colorized film: frames and seconds of it, frames/sec of the job, how the audio went,
  scene cuts, flicker (mean |Δab| where L did not change, Lab units), and where the input was in
  colour, its own flicker and the mean ab error against it."""
  frames: int = 0
  duration: float = 0.0
  frames_per_sec: float = 0.0
  audio: str = 'none'
  cuts: int = 0
  flicker: float = float('nan')
  original_flicker: object = None
  ab_error: object = None

  def summary(self):
    text = (f'{self.frames} frames, {self.duration:.1f} s, {self.frames_per_sec:.1f} frames/s, '
            f'audio {self.audio}, {self.cuts} scene cut(s), flicker {self.flicker:.3f}')
    if self.original_flicker is not None:
      ratio = self.flicker / self.original_flicker if self.original_flicker else float('inf')
      text += (f' (the original film: {self.original_flicker:.3f}, {ratio:.2f}x), ab error '
               f'{self.ab_error:.2f}')
    return text


class _Meter:
  """Flicker of the output and of the input, and ab error, on a pixel grid of each frame."""

  def __init__(self):
    self.sums = np.zeros(4)   # output change sum, input change sum, unchanged count, ab error
    self.frames, self.input_chroma, self._before = 0, 0.0, None

  def add(self, rgb_in, rgb_out, starts_scene):
    grid = (slice(None, None, _FLICKER_STRIDE),) * 2
    lab_in = color.rgb_to_lab(color.uint8_to_unit(rgb_in[grid], np.float32, np), np)
    ab_out = color.rgb_to_lab(color.uint8_to_unit(rgb_out[grid], np.float32, np), np)[..., 1:]
    L, ab_in = lab_in[..., :1], lab_in[..., 1:]
    if self._before is not None and not starts_scene:
      L_before, ab_in_before, ab_out_before = self._before
      out_sum, count = metrics.steady_ab_change(L_before, ab_out_before, L, ab_out, xp=np)
      in_sum, _ = metrics.steady_ab_change(L_before, ab_in_before, L, ab_in, xp=np)
      self.sums[:3] += out_sum, in_sum, count
    self.sums[3] += np.abs(ab_out - ab_in).mean()
    self.input_chroma += np.abs(ab_in).mean()
    self.frames += 1
    self._before = L, ab_in, ab_out

  def into(self, report):
    out_sum, in_sum, count, ab_error = self.sums
    report.flicker = out_sum / count if count else 0.0
    if self.frames and self.input_chroma / self.frames >= metrics.COLOUR_CHROMA:
      report.original_flicker = in_sum / count if count else 0.0
      report.ab_error = ab_error / self.frames


class _Writer:
  """The output file: video stream like the input's (size, time base, rotation), and its
  audio streams copied, or re-encoded to AAC where the container refuses the copy."""

  def __init__(self, path, muxer, reader, codec, crf, rotation):
    av = video_data.av()
    self.path, self.container, errors = path, None, []
    for copy_audio in (True, False):
      try:
        self._open(av, muxer, reader, codec, crf, rotation, copy_audio)
        self.audio = ('copied' if copy_audio else 're-encoded to AAC') if reader.audio_streams \
            else 'none'
        return
      except (av.FFmpegError, ValueError) as e:   # ValueError: a codec the muxer refuses
        errors.append(video_data.reason(e))
        if self.container is not None:
          self.container.close()
    raise VideoError(f'{path} cannot be written with --video_codec={codec} '
                     f'({"; ".join(dict.fromkeys(errors))}).')

  def _open(self, av, muxer, reader, codec, crf, rotation, copy_audio):
    self.container = av.open(self.path, 'w', format=muxer)
    film, source = reader.film, reader.stream
    stream = self.container.add_stream(CODECS[codec], rate=film.rate or 25)
    stream.width, stream.height = film.width, film.height
    even = film.width % 2 == 0 and film.height % 2 == 0
    # ffv1: lossless RGB; otherwise 4:2:0, which needs even sides (else 4:4:4)
    stream.pix_fmt = 'bgr0' if codec == 'ffv1' else 'yuv420p' if even else 'yuv444p'
    stream.time_base = stream.codec_context.time_base = source.time_base
    stream.options = {'h264': {'crf': str(crf), 'preset': 'medium'},
                      'vp9': {'crf': str(crf), 'b': '0', 'row-mt': '1'}, 'ffv1': {}}[codec]
    if rotation:
      stream.set_display_rotation(rotation)
    self.video, self.audio_out = stream, {}
    for source_audio in reader.audio_streams:
      if copy_audio:
        self.audio_out[source_audio.index] = self.container.add_stream_from_template(source_audio)
      else:
        context = source_audio.codec_context
        out = self.container.add_stream('aac', rate=context.sample_rate)
        out.layout = _NAMED_LAYOUTS.get(context.channels, context.layout.name)
        self.audio_out[source_audio.index] = out
    self.copy_audio = copy_audio
    self.container.start_encoding()

  def frame(self, rgb, pts):
    frame = video_data.av().VideoFrame.from_ndarray(rgb, format='rgb24')
    frame.pts, frame.time_base = pts, self.video.time_base
    self.container.mux(self.video.encode(frame))

  def audio_packet(self, packet):
    out = self.audio_out[packet.stream.index]
    if self.copy_audio:
      packet.stream = out
      self.container.mux(packet)
    else:
      for frame in packet.decode():
        frame.pts = None
        self.container.mux(out.encode(frame))

  def close(self):
    """Flushes the encoders and closes the file (playable up to its last frame)."""
    try:
      self.container.mux(self.video.encode())
      if not self.copy_audio:
        for out in self.audio_out.values():
          self.container.mux(out.encode())
    finally:
      self.container.close()


_END = object()


def _put(items, item, stop):
  """``items.put(item)`` unless ``stop`` is set first; whether it was put."""
  while not stop.is_set():
    try:
      items.put(item, timeout=0.1)
      return True
    except queue.Full:
      continue
  return False


def _drain(items):
  """``items`` (a queue) as an iterator up to _END, raising an exception put in it."""
  while (item := items.get()) is not _END:
    if isinstance(item, BaseException):
      raise item
    yield item


def _batches(reader, batch_size):
  """([(rgb, pts, rotation)], audio packets read with them) of up to ``batch_size`` frames."""
  frames, audio, last_pts = [], [], -1
  try:
    for kind, item in reader.items():
      if kind == 'audio':
        audio.append(item)
        continue
      pts = item.pts if item.pts is not None else last_pts + 1
      last_pts = pts = max(pts, last_pts + 1)    # strictly increasing, as encoders need
      frames.append((item.to_ndarray(format='rgb24'), pts, item.rotation))
      if len(frames) == batch_size:
        yield frames, audio
        frames, audio = [], []
  except VideoError:   # the frames decoded before the error are colorized too
    if frames:
      yield frames, audio
    raise
  if frames or audio:
    yield frames, audio


def colorize_video(colorizer, src, dst, *, temporal_method='smooth', codec='h264',
                   crf=DEFAULT_CRF, max_pixels=None, progress=None, overwrite=False):
  """Colorizes the film ``src`` into ``dst`` with ``colorizer`` (a Colorizer) and
  ``temporal_method`` (a name of temporal.METHODS, or a temporal.Smoother); ``progress``, a
  tqdm bar (anything with ``reset(total)`` and ``update(n)``), counts the frames written.
  Returns a Report; raises VideoError (one sentence) for a film that cannot be read or written,
  keeping the frames written before a decoding error under ``dst.partial``. ``dst`` is replaced
  only if ``overwrite``, and only when the new film is complete."""
  if codec not in CODECS:
    raise VideoError(f'--video_codec={codec} is not allowed; use one of {", ".join(CODECS)}.')
  muxer = _MUXERS.get(os.path.splitext(dst)[1].lower())
  if muxer is None:
    raise VideoError(f'{dst} is not allowed; a colorized film is written as '
                     f'{", ".join(_MUXERS)}.')
  if os.path.realpath(src) == os.path.realpath(dst):
    raise VideoError(f'{dst} would overwrite its input.')
  if os.path.lexists(dst) and not overwrite:
    raise VideoError(f'{dst} exists already (--overwrite to replace it).')
  reader = video_data.Reader(src, max_pixels or np.iinfo(np.int64).max)
  if progress is not None:
    progress.reset(total=reader.film.frames)
  smoother = temporal_method if isinstance(temporal_method, temporal.Smoother) else \
      temporal.Smoother(temporal_method)
  report, meter = Report(), _Meter()
  partial, start, scenes = partial_path(dst), time.perf_counter(), 0
  decoded, colorized, stop = queue.Queue(2), queue.Queue(2), threading.Event()
  writer, write_errors = None, []

  def decode():
    try:
      for batch in _batches(reader, colorizer.batch_size):
        if not _put(decoded, batch, stop):
          return
      _put(decoded, _END, stop)
    except BaseException as e:  # noqa: BLE001  (raised in the caller's thread, in order)
      _put(decoded, e, stop)

  def write():
    nonlocal writer
    try:
      for frames, abs_, used, starts, audio in _drain(colorized):
        if writer is None and frames:
          os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
          writer = _Writer(partial, muxer, reader, codec, crf, frames[0][2])
        for (rgb, pts, _), ab, size, starts_scene in zip(frames, abs_, used, starts):
          out = colorizer.full_resolution(rgb, ab, size)
          writer.frame(out, pts)
          meter.add(rgb, out, starts_scene)
          report.frames += 1
        for packet in audio if writer is not None else ():
          writer.audio_packet(packet)
        if progress is not None:
          progress.update(len(frames))
    except BaseException as e:  # noqa: BLE001  (raised in the caller's thread)
      write_errors.append(e)
      stop.set()

  threads = [threading.Thread(target=decode, daemon=True),
             threading.Thread(target=write, daemon=True)]
  for thread in threads:
    thread.start()
  failure = None
  try:
    for frames, audio in _drain(decoded):
      abs_, used, starts = [], [], []
      for L, ab, size in colorizer.network_ab([rgb for rgb, _, _ in frames]) if frames else ():
        ab, starts_scene = smoother(L, ab)
        abs_.append(ab)
        used.append(size)
        starts.append(starts_scene)
        scenes += starts_scene
      if not _put(colorized, (frames, abs_, used, starts, audio), stop):
        break
  except BaseException as e:  # noqa: BLE001  (re-raised below, after the threads end)
    failure = e
  finally:
    _put(colorized, _END, stop)
    threads[1].join()
    stop.set()
    threads[0].join()
    reader.close()
    if writer is not None:
      writer.close()
  failure = failure or (write_errors[0] if write_errors else None)
  if isinstance(failure, VideoError) and writer is not None and report.frames:
    raise VideoError(f'{str(failure).rstrip(".")}; the {report.frames} frames before it are in '
                     f'{partial}.') from None
  if failure is not None:
    raise failure
  if report.frames == 0:
    raise VideoError(f'{src} holds no frames FFmpeg could decode.')
  os.replace(partial, dst)
  report.frames_per_sec = report.frames / (time.perf_counter() - start)
  report.duration, report.audio, report.cuts = reader.film.duration, writer.audio, scenes - 1
  meter.into(report)
  return report
