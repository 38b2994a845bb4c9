"""Reading people's video files with PyAV (FFmpeg's libraries, in its wheel): which files are
videos, what a film is (size, frame rate, duration, rotation, audio), and its decoded frames and
audio packets in file order, as they go. Each problem is a ``VideoError`` of one sentence.
No TensorFlow here; PyAV is the optional ``video`` extra.
"""
import dataclasses
import os
import stat

from colorjax.core.validation import UserError

# Files found in folders and globs by these; a file named explicitly is tried whatever its name.
EXTENSIONS = ('.mp4', '.mov', '.mkv', '.avi', '.webm', '.m4v', '.mpg', '.mpeg', '.wmv', '.flv',
              '.ts', '.3gp', '.ogv')


class VideoError(Exception):
  """A video that cannot be used (one sentence, naming the file)."""


def av():
  """PyAV, or one sentence on installing it."""
  try:
    import av as pyav  # noqa: PLC0415  (optional: the video extra)
  except ImportError:
    raise UserError("videos need PyAV: pip install 'colorjax[video]'.") from None
  pyav.logging.set_level(pyav.logging.PANIC)   # FFmpeg's console chatter; errors are raised
  return pyav


def is_video(path):
  return str(path).lower().endswith(EXTENSIONS)


@dataclasses.dataclass(frozen=True)
class Film:
  """What a Reader found: the frames' size as stored (a display rotation, which each decoded
  frame carries as ``frame.rotation``, is applied by players), average frame rate, frame count
  (the container's, or estimated from the duration; None if neither is known), duration in
  seconds, video codec and the audio streams' codecs."""
  width: int
  height: int
  rate: object
  frames: object
  duration: float
  codec: str
  audio: tuple


class Reader:
  """An open video file: ``film`` (a Film), ``stream`` (its video stream), ``audio_streams``,
  and ``items()``: ('frame', av.VideoFrame) and ('audio', av.Packet) in file order."""

  def __init__(self, path, max_pixels):
    self.path = path
    pyav = av()
    try:
      mode = os.stat(path).st_mode
    except OSError as e:
      raise VideoError(f'{path} cannot be read ({e.strerror}).') from None
    if not stat.S_ISREG(mode):
      raise VideoError(f'{path} is not a regular file.')
    if os.path.getsize(path) == 0:
      raise VideoError(f'{path} is empty (0 bytes).')
    try:
      self.container = pyav.open(str(path))
    except pyav.FFmpegError as e:
      raise VideoError(f'{path} is not a video FFmpeg can read ({reason(e)}).') from None
    try:
      self._check(pyav, max_pixels)
    except VideoError:
      self.container.close()
      raise

  def _check(self, pyav, max_pixels):
    if not self.container.streams.video:
      raise VideoError(f'{self.path} holds no video stream.')
    stream = self.stream = self.container.streams.video[0]
    context = stream.codec_context
    if context is None or not context.name:
      raise VideoError(f'{self.path}: its video codec is not one FFmpeg decodes.')
    if not context.width or not context.height:
      raise VideoError(f'{self.path}: its video stream has no frame size (damaged or empty).')
    if context.width * context.height > max_pixels:
      raise VideoError(f'{self.path}: its frames are {context.width}x{context.height}, more than '
                       f'max_pixels={max_pixels}.')
    stream.thread_type = 'AUTO'
    self.audio_streams = [s for s in self.container.streams.audio if s.codec_context]
    duration = (float(stream.duration * stream.time_base) if stream.duration
                else (self.container.duration or 0) / pyav.time_base)
    rate = stream.average_rate or stream.guessed_rate
    frames = stream.frames or (round(duration * rate) if duration and rate else None)
    self.film = Film(context.width, context.height, rate, frames, duration, context.name,
                     tuple(s.codec_context.name for s in self.audio_streams))

  def items(self):
    """('frame', frame) and ('audio', packet) in file order; a decoding error mid-film is a
    VideoError saying where it stopped."""
    pyav, decoded = av(), 0
    try:
      for packet in self.container.demux([self.stream, *self.audio_streams]):
        if packet.stream.type == 'audio':
          if packet.dts is not None:
            yield 'audio', packet
          continue
        for frame in packet.decode():
          decoded += 1
          yield 'frame', frame
    except pyav.FFmpegError as e:
      raise VideoError(f'{self.path}: decoding stopped after frame {decoded} '
                       f'({reason(e)}).') from None

  def close(self):
    self.container.close()


def reason(error):
  """FFmpeg's message without the errno and file name PyAV adds."""
  text = getattr(error, 'strerror', None) or str(error)
  return text.strip().rstrip('.') or type(error).__name__
