"""colorjax colorize on a checkpoint trained here, with good, bad and unsafe inputs."""
import io
import json
import os
import zipfile

import numpy as np
import pytest
from PIL import Image
from skimage import color as skcolor

from colorjax.cli.colorize import output_path
from colorjax.core.validation import UserError
from colorjax.data import images
from colorjax.inference import Colorizer
from colorjax.inference.artifact import Exported
from conftest import assert_colorizes_like_its_run, colour_image, run_cli


def test_output_paths_stay_under_the_output_folder(tmp_path):
  assert output_path(tmp_path, 'a/b.jpg', '.png') == os.path.realpath(tmp_path / 'a' / 'b.png')
  with pytest.raises(images.ImageError, match='outside'):
    output_path(tmp_path, '../../etc/passwd', '.png')


def test_colorize_keeps_size_and_lightness_and_reports_failures(trained_run, tmp_path):
  inputs = tmp_path / 'in'
  (inputs / 'album').mkdir(parents=True)
  colour = colour_image(1, size=(45, 70))
  Image.fromarray(colour).save(inputs / 'album' / 'colour.png')
  gray = colour_image(2, size=(81, 30))[..., 0]
  Image.fromarray(gray).save(inputs / 'gray.jpg', quality=98)
  (inputs / 'album' / 'broken.jpg').write_text('not an image')
  out = tmp_path / 'out'
  result = run_cli('colorize', f'--workdir={trained_run}', f'--output={out}', '--keep_original',
                   inputs, tmp_path / 'missing.png')
  assert result.returncode == 1, result.stderr[-3000:]
  assert 'Colorized 2 image(s)' in result.stdout
  assert 'broken.jpg' in result.stderr and 'missing.png' in result.stderr
  assert 'tensorflow' not in result.stderr.lower()
  for relative, original in (('album/colour.png', colour), ('gray.png', None)):
    written = np.asarray(Image.open(out / relative).convert('RGB'))
    if original is None:
      original = np.repeat(np.asarray(Image.open(inputs / 'gray.jpg'))[..., None], 3, axis=-1)
    assert written.shape == original.shape
    L_in = skcolor.rgb2lab(original / 255.0)[..., 0]
    L_out = skcolor.rgb2lab(written / 255.0)[..., 0]
    assert np.abs(L_in - L_out).mean() < 0.5 and np.percentile(np.abs(L_in - L_out), 99) < 2
  side_by_side = Image.open(out / 'album' / 'colour_compare.png')
  assert side_by_side.size == (2 * 70, 45)


def test_colorize_never_overwrites_an_input(trained_run, tmp_path):
  Image.fromarray(colour_image(3)).save(tmp_path / 'photo.png')
  result = run_cli('colorize', f'--workdir={trained_run}', f'--output={tmp_path}',
                   tmp_path / 'photo.png')
  assert result.returncode == 1 and 'overwrite an input' in result.stderr
  np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / 'photo.png')), colour_image(3))


def test_exported_model_colorizes_like_its_run_without_the_run(trained_run, tmp_path):
  model = tmp_path / 'model.cjx'
  exported = run_cli('export', f'--workdir={trained_run}', f'--output={model}')
  assert exported.returncode == 0, exported.stderr[-3000:]
  assert 'cpu, cuda, tpu' in exported.stdout
  # The exported file alone, moved away from the run it came from.
  moved = tmp_path / 'elsewhere.cjx'
  os.rename(model, moved)
  inputs = assert_colorizes_like_its_run(trained_run, moved, tmp_path)
  wrong = run_cli('colorize', f'--exported={moved}', '--resolution=64',
                  f'--output={tmp_path / "other"}', inputs)
  assert wrong.returncode == 2 and 'exported at 32' in wrong.stderr


def test_export_and_colorize_refuse_a_resolution_the_network_cannot_take(trained_run, tmp_path):
  result = run_cli('export', f'--workdir={trained_run}', f'--output={tmp_path / "m.cjx"}',
                   '--resolution=33')
  assert result.returncode == 2
  assert '--resolution=33 is not allowed' in result.stderr and 'multiple of 2' in result.stderr
  result = run_cli('export', f'--workdir={trained_run}', f'--output={tmp_path / "m.cjx"}',
                   '--resolution=65536')
  assert result.returncode == 2 and '--resolution=65536 is not allowed; use at most 8192.' in (
      result.stderr)
  not_a_model = tmp_path / 'notes.cjx'
  not_a_model.write_text('hello')
  result = run_cli('colorize', f'--exported={not_a_model}', f'--output={tmp_path / "out"}',
                   not_a_model)
  assert result.returncode == 2 and 'is not a usable colorjax exported model' in result.stderr


def test_the_colorizer_from_python_gives_what_the_command_writes(trained_run, tmp_path):
  """Colorizer.from_run(workdir)(image), as the README shows it: the command's output, for a
  path, a PIL image or a uint8 array alike, batched or one by one."""
  gray = colour_image(4, size=(37, 52))[..., 0]
  Image.fromarray(gray).save(tmp_path / 'gray.png')
  result = run_cli('colorize', f'--workdir={trained_run}', f'--output={tmp_path / "out"}',
                   tmp_path / 'gray.png')
  assert result.returncode == 0, result.stderr[-3000:]
  written = np.asarray(Image.open(tmp_path / 'out' / 'gray.png'))

  colorizer = Colorizer.from_run(str(trained_run), batch_size=2)
  for image in (str(tmp_path / 'gray.png'), Image.open(tmp_path / 'gray.png'), gray):
    np.testing.assert_array_equal(colorizer(image), written)
  others = [colour_image(5, size=(20, 64)), colour_image(6, size=(64, 20)), np.dstack([gray] * 3)]
  batched = colorizer.colorize(others)
  for image, colour in zip(others, batched):
    np.testing.assert_array_equal(colour, colorizer(image))
  np.testing.assert_array_equal(batched[2], written)
  with pytest.raises(UserError, match=r'must be uint8 \[H, W\] or \[H, W, 3\]; got float64'):
    colorizer(np.zeros((8, 8, 3)))


def test_colorize_never_writes_one_output_twice_nor_over_an_existing_file(trained_run, tmp_path):
  """Same names from two folders get distinct outputs; a NAME_compare side-by-side never lands
  on another input's output or on an input; a file already there is kept unless --overwrite."""
  for folder, seed in (('a', 1), ('b', 2)):
    (tmp_path / folder).mkdir()
    Image.fromarray(colour_image(seed)).save(tmp_path / folder / 'same.png')
  Image.fromarray(colour_image(3)).save(tmp_path / 'a' / 'same_compare.png')
  out = tmp_path / 'out'
  out.mkdir()
  (out / 'kept.png').write_bytes(b'mine')
  Image.fromarray(colour_image(4)).save(tmp_path / 'kept.png')
  args = [f'--workdir={trained_run}', f'--output={out}', '--keep_original',
          tmp_path / 'a', tmp_path / 'b', tmp_path / 'kept.png']
  result = run_cli('colorize', *args)
  assert result.returncode == 1 and 'Colorized 3 image(s)' in result.stdout
  assert 'kept.png exists already (--overwrite to replace it)' in result.stderr
  assert (out / 'kept.png').read_bytes() == b'mine'
  written = sorted(p.name for p in out.iterdir())
  assert written == ['kept.png', 'same-2.png', 'same-2_compare.png', 'same.png',
                     'same_compare-2.png', 'same_compare-2_compare.png', 'same_compare.png']
  # a's same.png, b's same.png and a's same_compare.png: three distinct colorizations
  lightness = {name: skcolor.rgb2lab(np.asarray(Image.open(out / name)) / 255.0)[..., 0]
               for name in ('same.png', 'same-2.png', 'same_compare-2.png')}
  for name, seed in (('same.png', 1), ('same-2.png', 2), ('same_compare-2.png', 3)):
    original = skcolor.rgb2lab(colour_image(seed) / 255.0)[..., 0]
    assert np.abs(lightness[name] - original).mean() < 0.5, name
  result = run_cli('colorize', *args, '--overwrite')
  assert result.returncode == 0, result.stderr[-2000:]
  assert (out / 'kept.png').read_bytes() != b'mine'


def test_a_fifo_among_the_inputs_is_skipped_and_an_empty_folder_is_one_sentence(trained_run,
                                                                                 tmp_path):
  inputs = tmp_path / 'in'
  inputs.mkdir()
  Image.fromarray(colour_image(1)).save(inputs / 'photo.png')
  os.mkfifo(inputs / 'pipe.jpg')   # opening it to read would block until a writer comes
  result = run_cli('colorize', f'--workdir={trained_run}', f'--output={tmp_path / "out"}', inputs)
  assert result.returncode == 1 and 'Colorized 1 image(s)' in result.stdout
  assert 'pipe.jpg: unreadable: not a regular file' in result.stderr
  (tmp_path / 'empty').mkdir()
  result = run_cli('colorize', f'--workdir={trained_run}', f'--output={tmp_path / "out2"}',
                   tmp_path / 'empty')
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1].startswith(
      f'colorjax colorize: found no images in {tmp_path / "empty"} (looked recursively for')
  assert not (tmp_path / 'out2').exists()


def test_a_damaged_exported_file_is_one_sentence(trained_run, tmp_path):
  """Garbage, truncation, tampered metadata and mismatched weights: each refused in one
  sentence when the file is opened, never a traceback or a huge allocation."""
  model = tmp_path / 'model.cjx'
  assert run_cli('export', f'--workdir={trained_run}', f'--output={model}').returncode == 0
  with zipfile.ZipFile(model) as archive:
    parts = {name: archive.read(name) for name in archive.namelist()}
  meta = json.loads(parts['meta.json'])
  with np.load(io.BytesIO(parts['weights.npz'])) as npz:
    arrays = [npz[f'arr_{i}'] for i in range(len(npz.files))]

  def rewritten(**changes):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w') as archive:
      for name, data in {**parts, **changes}.items():
        if data is not None:
          archive.writestr(name, data)
    return buffer.getvalue()

  def npz(arrays):
    buffer = io.BytesIO()
    np.savez(buffer, *arrays)
    return buffer.getvalue()

  damaged = {
      'garbage file': b'not a zip at all',
      'truncated file': model.read_bytes()[:len(model.read_bytes()) // 2],
      'garbage function': rewritten(predict=b'\x00' * 64),
      'truncated function': rewritten(predict=parts['predict'][:100]),
      'no function': rewritten(predict=None),
      'metadata not JSON': rewritten(**{'meta.json': b'{"format": '}),
      'metadata a list': rewritten(**{'meta.json': b'[1, 2]'}),
      'huge resolution': rewritten(**{'meta.json': json.dumps({**meta, 'resolution': 10 ** 9})}),
      'resolution a string': rewritten(**{'meta.json': json.dumps({**meta, 'resolution': '32'})}),
      'other resolution': rewritten(**{'meta.json': json.dumps({**meta, 'resolution': 64})}),
      'a weight missing': rewritten(**{'weights.npz': npz(arrays[:-1])}),
      'a weight reshaped': rewritten(**{'weights.npz': npz(arrays[:-1] + [arrays[-1][None]])}),
      'weights not npz': rewritten(**{'weights.npz': b'hello'}),
  }
  for case, data in damaged.items():
    path = tmp_path / 'damaged.cjx'
    path.write_bytes(data)
    with pytest.raises(UserError, match=rf'{path} is not a usable colorjax exported model: |'
                                        rf'{path} is a .* file; this colorjax reads'):
      Exported(str(path))
  result = run_cli('colorize', f'--exported={path}', f'--output={tmp_path / "out"}', path)
  assert result.returncode == 2 and 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith(f'colorjax colorize: {path} is not')
