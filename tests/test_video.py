"""Films through colorjax colorize and Colorizer.colorize_video, on videos written here with
PyAV: a moving colour square on a still background, a scene cut, a tone, odd and rotated
frames, variable frame rate; and films that cannot be used."""
import fractions
import json
import os
import re
import signal
import subprocess
import sys
import time

import av
import numpy as np
import pytest
from skimage import color as skcolor

from colorjax.core import metrics
from colorjax.inference import Colorizer, temporal
from colorjax.inference.video import VideoError
from conftest import ROOT, colour_image, run_cli

TIME_BASE = fractions.Fraction(1, 1000)


def scene(i, size, seed):
  """Frame ``i`` of a scene: a still picture with a square moving across it."""
  height, width = size
  rgb = colour_image(seed, size=(height, width)).copy()
  x = (3 * i) % max(1, width - 8)
  rgb[height // 3:height // 3 + 8, x:x + 8] = (230, 40, 40)
  return rgb


def write_film(path, size=(47, 65), frames=24, cut=12, pts=None, rotation=0, audio='aac',
               codec='libx264'):
  """A film with a cut at frame ``cut``, timestamps ``pts`` (ms), a 440 Hz tone in ``audio``
  (aac, pcm_u8 or None); returns its frames as written (before encoding)."""
  pts = pts or [40 * i for i in range(frames)]
  container = av.open(str(path), 'w')
  video = container.add_stream(codec, rate=25)
  video.width, video.height = size[1], size[0]
  video.pix_fmt = ('rgb24' if codec == 'png' else 'yuv444p' if size[0] % 2 or size[1] % 2
                   else 'yuv420p')
  video.time_base = video.codec_context.time_base = TIME_BASE
  video.options = {'crf': '12'} if codec == 'libx264' else {}
  if rotation:
    video.set_display_rotation(rotation)
  tone = None
  if audio:
    tone = container.add_stream(audio, rate=16000)
    tone.layout = 'mono'
  written = []
  for i, t in enumerate(pts):
    rgb = scene(i, size, seed=1 if i < cut else 2)
    frame = av.VideoFrame.from_ndarray(rgb, format='rgb24')
    frame.pts, frame.time_base = t, TIME_BASE
    container.mux(video.encode(frame))
    written.append(rgb)
  container.mux(video.encode())
  if tone is not None:
    seconds = (pts[-1] + 40) / 1000
    samples = 0.3 * np.sin(2 * np.pi * 440 * np.arange(int(16000 * seconds)) / 16000)
    if audio == 'pcm_u8':
      samples, sample_format = (128 + 127 * samples).astype(np.uint8), 'u8'
    else:
      samples, sample_format = samples.astype(np.float32), 'fltp'
    frame = av.AudioFrame.from_ndarray(samples[None], format=sample_format, layout='mono')
    frame.sample_rate, frame.pts = 16000, 0
    container.mux(tone.encode(frame))
    container.mux(tone.encode())
  container.close()
  return written


def decoded(path):
  """(frames as uint8 RGB, their times in seconds, rotations, audio codecs and packets)."""
  with av.open(str(path)) as container:
    audio = [(s.codec_context.name, s.codec_context.sample_rate) for s in container.streams.audio]
    frames, times, rotations = [], [], []
    for frame in container.decode(video=0):
      frames.append(frame.to_ndarray(format='rgb24'))
      times.append(float(frame.time))
      rotations.append(frame.rotation)
  with av.open(str(path)) as container:
    packets = sum(1 for p in container.demux(audio=0) if p.size) if audio else 0
  return np.stack(frames), np.array(times), set(rotations), audio, packets


def L_of(rgb):
  return skcolor.rgb2lab(rgb / 255.0)[..., 0]


@pytest.fixture(scope='module')
def colorizer(trained_run):
  return Colorizer.from_run(str(trained_run), batch_size=4)


def test_a_film_keeps_its_frames_timestamps_rotation_sound_and_lightness(colorizer, tmp_path):
  """Odd size, variable frame rate, a 90° display rotation and AAC sound: all kept, each frame
  with its own L (to within what re-encoding the input alone changes)."""
  pts = [0, 40, 100, 120, 200, 230, 300, 380, 400, 470, 520, 560, 640, 700, 720, 800]
  write_film(tmp_path / 'in.mp4', size=(47, 65), frames=len(pts), cut=8, pts=pts, rotation=90)
  report = colorizer.colorize_video(str(tmp_path / 'in.mp4'), str(tmp_path / 'out.mp4'))
  frames_in, times_in, rotation_in, audio_in, packets_in = decoded(tmp_path / 'in.mp4')
  frames_out, times_out, rotation_out, audio_out, packets_out = decoded(tmp_path / 'out.mp4')
  assert frames_out.shape == frames_in.shape == (len(pts), 47, 65, 3)
  np.testing.assert_allclose(times_out, times_in, atol=1e-3)
  assert rotation_out == rotation_in == {90}
  assert audio_out == audio_in == [('aac', 16000)] and packets_out == packets_in
  assert (report.frames, report.audio, report.cuts) == (len(pts), 'copied', 1)
  # What the codec alone changes: the decoded input encoded again with colorize's settings.
  again = tmp_path / 'again.mp4'
  with av.open(str(again), 'w') as container:
    stream = container.add_stream('libx264', rate=25)
    stream.width, stream.height, stream.pix_fmt = 65, 47, 'yuv444p'
    stream.options = {'crf': '18', 'preset': 'medium'}
    for i, rgb in enumerate(frames_in):
      frame = av.VideoFrame.from_ndarray(rgb, format='rgb24')
      frame.pts = i
      container.mux(stream.encode(frame))
    container.mux(stream.encode())
  codec_change = np.abs(L_of(decoded(again)[0]) - L_of(frames_in)).mean()
  assert np.abs(L_of(frames_out) - L_of(frames_in)).mean() <= 1.5 * codec_change + 0.1
  chroma = np.abs(skcolor.rgb2lab(frames_out / 255.0)[..., 1:]).mean()
  assert chroma > 1   # coloured, not the input's gray copied through


def test_smoothing_lowers_flicker_on_still_background_and_starts_fresh_at_a_cut(colorizer,
                                                                                tmp_path):
  write_film(tmp_path / 'in.mkv', size=(48, 64), frames=24, cut=12, audio=None)
  gray = tmp_path / 'gray.mkv'   # the same film in black and white and grainy, as old films are
  frames, grain = decoded(tmp_path / 'in.mkv')[0], np.random.default_rng(0)
  with av.open(str(gray), 'w') as container:
    stream = container.add_stream('ffv1', rate=25)
    stream.width, stream.height, stream.pix_fmt = 64, 48, 'yuv444p'
    for i, rgb in enumerate(frames):
      noisy = np.clip(L_gray(rgb) + grain.normal(0, 4, rgb.shape[:2]), 0, 255).astype(np.uint8)
      frame = av.VideoFrame.from_ndarray(np.repeat(noisy[..., None], 3, -1), 'rgb24')
      frame.pts = i
      container.mux(stream.encode(frame))
    container.mux(stream.encode())
  reports, outputs = {}, {}
  for method in temporal.METHODS:
    out = tmp_path / f'{method}.mkv'
    reports[method] = colorizer.colorize_video(str(gray), str(out), temporal=method,
                                               codec='ffv1')
    outputs[method] = decoded(out)[0]
  assert reports['none'].original_flicker is None   # a gray input has no colour to compare
  assert reports['smooth'].flicker < 0.8 * reports['none'].flicker
  assert reports['smooth'].cuts == reports['none'].cuts == 1
  # ffv1 is lossless: the cut's first frame is the unblended one, the frame after it is not.
  np.testing.assert_array_equal(outputs['smooth'][12], outputs['none'][12])
  assert np.abs(outputs['smooth'][13].astype(int) - outputs['none'][13]).max() > 0


def L_gray(rgb):
  return np.round(255 * skcolor.lab2rgb(np.stack([L_of(rgb)] + [np.zeros(rgb.shape[:2])] * 2,
                                                 -1))[..., 0]).astype(np.uint8)


def test_the_flicker_measure_matches_an_independent_computation(colorizer, tmp_path):
  """The report's flicker of the original film (a colour input), against float64 scikit-image
  Lab and loops over the frame pairs; and steady_ab_change against a per-pixel loop."""
  write_film(tmp_path / 'in.mkv', size=(48, 64), frames=10, cut=100, audio=None,
             codec='ffv1')
  report = colorizer.colorize_video(str(tmp_path / 'in.mkv'), str(tmp_path / 'out.mkv'),
                                    codec='ffv1')
  lab = [skcolor.rgb2lab(f[::4, ::4] / 255.0) for f in decoded(tmp_path / 'in.mkv')[0]]
  total = count = 0
  for before, after in zip(lab, lab[1:]):
    for y, x in np.ndindex(before.shape[:2]):
      if abs(after[y, x, 0] - before[y, x, 0]) < metrics.STEADY_L_CHANGE:
        total += np.abs(after[y, x, 1:] - before[y, x, 1:]).mean()
        count += 1
  assert report.original_flicker == pytest.approx(total / count, rel=1e-3)
  out = [skcolor.rgb2lab(f[::4, ::4] / 255.0) for f in decoded(tmp_path / 'out.mkv')[0]]
  assert report.ab_error == pytest.approx(np.mean([np.abs(o[..., 1:] - i[..., 1:]).mean()
                                                   for o, i in zip(out, lab)]), rel=1e-3)
  rng = np.random.default_rng(0)
  L0, L1 = rng.uniform(0, 100, (2, 9, 7, 1))
  L1 = np.where(rng.random((9, 7, 1)) < 0.5, L0 + rng.uniform(-1.9, 1.9, L0.shape), L1)
  ab0, ab1 = rng.uniform(-80, 80, (2, 9, 7, 2))
  expected = [(np.abs(ab1[y, x] - ab0[y, x]).mean(), 1) for y, x in np.ndindex(9, 7)
              if abs(L1[y, x, 0] - L0[y, x, 0]) < 2]
  got = metrics.steady_ab_change(L0, ab0, L1, ab1, xp=np)
  np.testing.assert_allclose(got, np.sum(expected, axis=0))


def test_colorize_takes_films_beside_photos_and_reports_bad_ones(trained_run, tmp_path):
  inputs = tmp_path / 'in'
  (inputs / 'reels').mkdir(parents=True)
  write_film(inputs / 'reels' / 'film.avi', size=(32, 48), frames=6, audio='pcm_u8',
             codec='mpeg4')
  from PIL import Image
  Image.fromarray(colour_image(5)).save(inputs / 'photo.png')
  (inputs / 'text.mp4').write_text('not a film')
  (inputs / 'empty.mov').write_bytes(b'')
  data = (inputs / 'reels' / 'film.avi').read_bytes()
  (inputs / 'truncated.mkv').write_bytes(data[:200])
  write_film(tmp_path / 'h264.mkv', size=(32, 48), frames=4, audio=None)   # its codec renamed
  (inputs / 'unknown_codec.mkv').write_bytes((tmp_path / 'h264.mkv').read_bytes().replace(
      b'V_MPEG4/ISO/AVC', b'V_COLORJAX/NONE'))
  with av.open(str(inputs / 'sound.mp4'), 'w') as container:   # sound only, no video
    tone = container.add_stream('aac', rate=8000)
    tone.layout = 'mono'
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.float32), 'fltp', 'mono')
    frame.sample_rate, frame.pts = 8000, 0
    container.mux(tone.encode(frame))
    container.mux(tone.encode())
  out = tmp_path / 'out'
  result = run_cli('colorize', f'--workdir={trained_run}', f'--output={out}', inputs)
  assert result.returncode == 1, result.stderr[-3000:]
  assert 'Colorized 1 image(s) and 1 film(s)' in result.stdout
  # .mp4 takes no 8-bit PCM: the sound is re-encoded, and as long as the input's
  assert f'{out / "reels" / "film.mp4"}: 6 frames, 0.2 s' in result.stdout
  assert 'audio re-encoded to AAC' in result.stdout
  frames, _, _, audio, _ = decoded(out / 'reels' / 'film.mp4')
  assert frames.shape == (6, 32, 48, 3) and audio == [('aac', 16000)]
  with av.open(str(out / 'reels' / 'film.mp4')) as container:
    sound = sum(f.samples for f in container.decode(audio=0)) / 16000
  assert 0.24 <= sound <= 0.24 + 2 * 1024 / 16000   # AAC adds up to two frames (priming, padding)
  failed = [line for line in result.stderr.splitlines() if line.startswith('  failed: ')]
  expected = {'text.mp4': 'is not a video FFmpeg can read', 'empty.mov': 'is empty (0 bytes)',
              'truncated.mkv': '', 'sound.mp4': 'holds no video stream',
              'unknown_codec.mkv': 'its video codec is not one FFmpeg decodes'}
  assert len(failed) == len(expected) and 'Traceback' not in result.stderr
  for name, sentence in expected.items():
    assert any(line.startswith(f'  failed: {inputs / name}') and sentence in line
               for line in failed), (name, failed)
  assert sorted(os.listdir(out)) == ['photo.png', 'reels']
  big = run_cli('colorize', f'--workdir={trained_run}', f'--output={tmp_path / "big"}',
                '--max_pixels=1000', inputs / 'reels' / 'film.avi')
  assert big.returncode == 1 and 'its frames are 48x32, more than max_pixels=1000' in big.stderr
  once = run_cli('colorize', f'--workdir={trained_run}', f'--output={tmp_path / "twice"}',
                 '--temporal=none', inputs / 'reels' / 'film.avi')
  assert once.returncode == 0, once.stderr[-3000:]
  before = (tmp_path / 'twice' / 'film.mp4').read_bytes()
  again = run_cli('colorize', f'--workdir={trained_run}', f'--output={tmp_path / "twice"}',
                  inputs / 'reels' / 'film.avi')
  assert again.returncode == 1 and 'film.mp4 exists already' in again.stderr
  assert (tmp_path / 'twice' / 'film.mp4').read_bytes() == before
  bad_crf = run_cli('colorize', f'--workdir={trained_run}', f'--output={out}', '--crf=99',
                    inputs)
  assert bad_crf.returncode == 2 and '--crf=99 is not allowed; use 0 to 51' in bad_crf.stderr


def test_a_decoding_error_mid_film_keeps_the_frames_before_it(colorizer, tmp_path):
  """A PNG-coded film whose seventh frame is damaged: one sentence saying where it stopped, the
  six frames before it colorized in NAME.partial, nothing under the final name."""
  write_film(tmp_path / 'reel.mov', size=(32, 48), frames=10, audio=None, codec='png')
  data = bytearray((tmp_path / 'reel.mov').read_bytes())
  starts = [i for i in range(len(data)) if data.startswith(b'\x89PNG\r\n\x1a\n', i)]
  data[starts[6] + 8:starts[6] + 200] = bytes(192)
  (tmp_path / 'damaged.mov').write_bytes(data)
  out = tmp_path / 'out.mov'
  with pytest.raises(VideoError, match=re.escape(
      f'{tmp_path / "damaged.mov"}: decoding stopped after frame 6 (Invalid data found when '
      f'processing input); the 6 frames before it are in {out}.partial.')):
    colorizer.colorize_video(str(tmp_path / 'damaged.mov'), str(out))
  assert not out.exists() and decoded(f'{out}.partial')[0].shape == (6, 32, 48, 3)


def test_an_interrupted_film_leaves_nothing_under_its_final_name(trained_run, tmp_path):
  write_film(tmp_path / 'long.mp4', size=(96, 128), frames=400, cut=200, audio=None)
  out = tmp_path / 'out'
  process = subprocess.Popen([sys.executable, '-m', 'colorjax.cli', 'colorize',
                              f'--workdir={trained_run}', f'--output={out}', '--batch_size=2',
                              str(tmp_path / 'long.mp4')], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  partial = out / 'long.mp4.partial'
  deadline = time.monotonic() + 120
  while not (partial.exists() and partial.stat().st_size > 0) and time.monotonic() < deadline:
    time.sleep(0.05)
  process.send_signal(signal.SIGTERM)
  assert process.wait(timeout=60) != 0
  assert partial.exists() and not (out / 'long.mp4').exists()


def test_a_film_that_cannot_be_written_is_one_sentence(colorizer, tmp_path):
  write_film(tmp_path / 'in.mp4', frames=4, audio=None)
  with pytest.raises(VideoError, match='would overwrite its input'):
    colorizer.colorize_video(str(tmp_path / 'in.mp4'), str(tmp_path / 'in.mp4'))
  with pytest.raises(VideoError, match='--video_codec=h265 is not allowed; use one of h264'):
    colorizer.colorize_video(str(tmp_path / 'in.mp4'), str(tmp_path / 'o.mp4'), codec='h265')
  assert not (tmp_path / 'o.mp4').exists()


def test_evaluate_measures_flicker_on_colour_films(trained_run, colorizer, tmp_path):
  films = tmp_path / 'films'
  films.mkdir()
  write_film(films / 'colour.mkv', size=(48, 64), frames=16, cut=8, audio=None)
  gray = decoded(films / 'colour.mkv')[0]
  with av.open(str(films / 'gray.mkv'), 'w') as container:
    stream = container.add_stream('ffv1', rate=25)
    stream.width, stream.height, stream.pix_fmt = 64, 48, 'bgr0'
    for i, rgb in enumerate(gray):
      frame = av.VideoFrame.from_ndarray(np.repeat(L_gray(rgb)[..., None], 3, -1), 'rgb24')
      frame.pts = i
      container.mux(stream.encode(frame))
    container.mux(stream.encode())
  result = run_cli('evaluate', f'--workdir={trained_run}', f'--video={films}',
                   f'--output={tmp_path / "eval"}')
  assert result.returncode == 1, result.stderr[-3000:]
  report = json.loads((tmp_path / 'eval' / 'step_2-video.json').read_text())
  (row,) = report['films']
  expected = colorizer.colorize_video(str(films / 'colour.mkv'), str(tmp_path / 'c.mkv'))
  assert row['frames'] == 16 and row['cuts'] == 1
  assert row['original_flicker'] == pytest.approx(expected.original_flicker)
  assert row['smooth']['flicker'] == pytest.approx(expected.flicker)
  assert row['smooth']['flicker'] < row['none']['flicker']
  assert report['failed'] == [{'film': str(films / 'gray.mkv'), 'reason':
                               f'{films / "gray.mkv"} is black and white: there is no colour to '
                               'measure against.'}]
  assert '| colour.mkv | 16 | 1 |' in result.stdout
  refused = run_cli('evaluate', f'--workdir={trained_run}', f'--video={films}', '--data=samples')
  assert refused.returncode == 2 and '--data does not go with --video' in refused.stderr
