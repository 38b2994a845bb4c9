"""The named evaluation protocols on a real TFDS imagenet2012 built from tiny archives: which
images each chooses and in what order, the crop and resize (against NumPy in float64), the
reference set, sharding over processes, and one sentence for every bad argument."""
import dataclasses
import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from skimage import color as skcolor
from skimage import metrics as skmetrics

from colorjax import evaluation
from colorjax.core.parallel import Shard
from colorjax.data import pipeline, protocols, sources
from colorjax.training import runs
from conftest import ROOT, run_cli
from test_evaluate import keras_fid
from test_prepare import _jpeg, write_imagenet_archives

VALIDATION = 20


def _name(number):
  return f'ILSVRC2012_val_{number:08d}.JPEG'


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp('imagenet')
  write_imagenet_archives(root / 'manual', per_synset=1, validation=VALIDATION)
  sources.prepare_tfds('imagenet2012', str(root / 'tfds'), str(root / 'manual'))
  return str(root / 'tfds')


@pytest.fixture(scope='module')
def read_order(data_dir):
  """The validation file names as TFDS reads them by default (what ColTran's take(5000) saw)."""
  builder = sources.tfds_builder('imagenet2012', data_dir)
  return [e['file_name'].decode() for e in builder.as_dataset(split='validation')
          .as_numpy_iterator()]


def _small(name, **changes):
  return dataclasses.replace(protocols.PROTOCOLS[name], **{'image_size': 16, **changes})


def _read(dataset):
  """{index: (file name, image)} of a protocol's dataset; every index once."""
  out = {}
  for element in dataset.as_numpy_iterator():
    index = int(element['index'])
    assert index not in out
    out[index] = (element['file_name'].decode(), element['image'])
  return out


def _names(elements):
  return [elements[i][0] for i in sorted(elements)]


def _original(file_name, decoder='pillow'):
  """The validation image as the archive holds it, in float64, decoded by Pillow (libjpeg's
  accurate DCT) or by TensorFlow's default fast DCT, which Pillow does not offer."""
  data = _jpeg(100 + int(re.search(r'(\d{8})', file_name).group(1)))
  if decoder == 'pillow':
    return np.asarray(Image.open(io.BytesIO(data)).convert('RGB'), np.float64)
  return tf.io.decode_jpeg(data, channels=3, dct_method='INTEGER_FAST').numpy().astype(np.float64)


def _area_weights(n, m):
  """[m, n]: output pixel i averages input pixels over [i, i + 1) · n / m, by overlap."""
  scale = n / m
  lo, hi = np.arange(m)[:, None] * scale, (np.arange(m)[:, None] + 1) * scale
  j = np.arange(n)[None, :]
  return np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0, None) / scale


def _bilinear_weights(n, m):
  """[m, n]: half-pixel-centre bilinear sampling (OpenCV's INTER_LINEAR), edges clamped."""
  source = np.clip((np.arange(m) + 0.5) * n / m - 0.5, 0, n - 1)
  low = np.floor(source).astype(int)
  high = np.minimum(low + 1, n - 1)
  weights = np.zeros((m, n))
  weights[np.arange(m), low] += 1 - (source - low)
  weights[np.arange(m), high] += source - low
  return weights


def _resized(rgb, size, weights):
  return np.einsum('ih,hwc,jw->ijc', weights(rgb.shape[0], size), rgb,
                   weights(rgb.shape[1], size))


def _assert_close(actual, expected):
  """Within one level everywhere (float32 against float64 rounding, and two JPEG decoders),
  and 0.1 on average: a crop one pixel off or another filter moves these smooth pictures by
  several levels."""
  difference = np.abs(actual.astype(np.float64) - np.round(expected))
  assert difference.max() <= 1 and difference.mean() < 0.1, (difference.max(), difference.mean())


def test_coltran_fid5k_takes_the_first_images_in_read_order_against_a_disjoint_reference(
    data_dir, read_order):
  protocol = _small('coltran-fid5k', count=5, reference=(10, 15))
  evaluated = _read(protocols.evaluated_images(protocol, data_dir))
  reference = _read(protocols.reference_images(protocol, data_dir))
  assert read_order[:5] != sorted(read_order[:5])    # TFDS's order, not the names'
  assert _names(evaluated) == read_order[:5]
  assert _names(reference) == read_order[10:15]
  assert sorted(evaluated) == sorted(reference) == list(range(5))


def test_coltran_fid5k_centre_crops_and_area_resizes(data_dir):
  for size in (16, 20):   # 40 -> 16 averages 2.5 pixels a pixel; 40 -> 20 exactly 2
    protocol = _small('coltran-fid5k', count=3, image_size=size)
    for name, image in _read(protocols.evaluated_images(protocol, data_dir)).values():
      original = _original(name, 'tensorflow')  # 40 × 48: the crop drops 4 columns a side
      height, width = original.shape[:2]
      left = (width - height) // 2
      _assert_close(image, _resized(original[:, left:left + height], size, _area_weights))


def test_coltran_fid5k_with_big_vision_lists_chooses_by_name(data_dir, tmp_path):
  chosen, held = [7, 3, 19, 1, 12], [2, 20, 8, 5, 11]
  (tmp_path / 'eval_file_names.txt').write_text('\n'.join(map(_name, chosen)))
  (tmp_path / 'reference_file_names.txt').write_text('\n'.join(map(_name, held)) + '\n')
  protocol = _small('coltran-fid5k', count=5, reference=(10, 15))
  evaluated = _read(protocols.evaluated_images(protocol, data_dir, str(tmp_path)))
  reference = _read(protocols.reference_images(protocol, data_dir, str(tmp_path)))
  assert _names(evaluated) == list(map(_name, chosen))
  assert _names(reference) == list(map(_name, held))


def test_val5k_takes_the_lowest_file_numbers_squashed_bilinearly_and_is_its_own_reference(
    data_dir):
  protocol = _small('val5k', count=5)
  evaluated = _read(protocols.evaluated_images(protocol, data_dir))
  reference = _read(protocols.reference_images(protocol, data_dir))
  assert _names(evaluated) == [_name(n) for n in range(1, 6)]
  for index, (name, image) in evaluated.items():
    assert reference[index][0] == name and np.array_equal(reference[index][1], image)
    _assert_close(image, _resized(_original(name), 16, _bilinear_weights))


def test_ctest10k_takes_the_listed_images_in_list_order(data_dir, tmp_path):
  listed = [14, 2, 9, 20, 6]
  path = tmp_path / 'ctest10k.txt'
  path.write_text(''.join(f'/n01440764/{_name(n)} {i}\n' for i, n in enumerate(listed)))
  protocol = _small('ctest10k', count=5)
  evaluated = _read(protocols.evaluated_images(protocol, data_dir, str(path)))
  assert _names(evaluated) == list(map(_name, listed))
  assert _names(_read(protocols.reference_images(protocol, data_dir, str(path)))) == _names(
      evaluated)


@pytest.mark.parametrize('name', ['coltran-fid5k', 'val5k'])
def test_two_processes_share_the_images_and_cover_each_once(data_dir, name):
  protocol = _small(name, count=7, reference=(8, 15) if name == 'coltran-fid5k' else None)
  for images in (protocols.evaluated_images, protocols.reference_images):
    whole = _read(images(protocol, data_dir))
    parts = [_read(images(protocol, data_dir, shard=Shard(i, 2))) for i in range(2)]
    assert sorted(parts[0]) == [0, 2, 4, 6] and sorted(parts[1]) == [1, 3, 5]
    assert {i: n for i, (n, _) in whole.items()} == {
        i: n for part in parts for i, (n, _) in part.items()}


def test_an_undecodable_image_is_skipped_and_counted(tmp_path):
  write_imagenet_archives(tmp_path / 'manual', per_synset=1, validation=3)
  broken = tmp_path / 'manual' / 'ILSVRC2012_img_val.tar'
  data = broken.read_bytes()
  jpeg = _jpeg(102)                             # ILSVRC2012_val_00000002's bytes
  broken.write_bytes(data.replace(jpeg, jpeg[:200] + b'\0' * (len(jpeg) - 200)))
  sources.prepare_tfds('imagenet2012', str(tmp_path / 'tfds'), str(tmp_path / 'manual'))
  skip_log = pipeline.SkipLog('protocol val5k')
  evaluated = _read(protocols.evaluated_images(_small('val5k', count=3), str(tmp_path / 'tfds'),
                                               skip_log=skip_log))
  assert _names(evaluated) == [_name(1), _name(3)]
  assert skip_log.counts() == {'undecodable': 1}




@pytest.mark.parametrize('case, message', [
    ('unknown', "'fid50k' is not an evaluation protocol; use 'coltran-fid5k', 'val5k', "
                "'ctest10k'."),
    ('source', "Protocol val5k evaluates ImageNet's validation images from tfds:imagenet2012, "
               "not 'folder:/photos'."),
    ('no list', 'Protocol ctest10k takes its images from a file list; give '
                '--file_list=PATH of ctest10k.txt.'),
    ('missing', "Cannot read the file list '{tmp}/absent.txt': No such file or directory."),
    ('bad line', "File list '{tmp}/list.txt', line 3: 'n01440764 ILSVRC2012_val_3.JPEG' does "
                 'not name an ImageNet validation image (ILSVRC2012_val_NNNNNNNN.JPEG).'),
    ('twice', "File list '{tmp}/list.txt', line 3: ILSVRC2012_val_00000001.JPEG is already on "
              'line 1.'),
    ('short', "File list '{tmp}/list.txt' names 2 images; the protocol takes 10000."),
    ('val5k list', 'Protocol val5k takes no file list: its images are ILSVRC2012_val_00000001 '
                   'to 00005000.'),
    ('coltran file', "Protocol coltran-fid5k's file lists are a folder holding big_vision's "
                     "eval_file_names.txt and reference_file_names.txt; '{tmp}/list.txt' is "
                     'not a folder.'),
    ('coltran empty', "Cannot read the file list '{tmp}/eval_file_names.txt': No such file or "
                      'directory.'),
])
def test_bad_arguments_are_one_sentence(tmp_path, case, message):
  one, two = _name(1), _name(2)
  name, source, text = {
      'unknown': ('fid50k', 'tfds:imagenet2012', None),
      'source': ('val5k', 'folder:/photos', None),
      'no list': ('ctest10k', 'tfds:imagenet2012', None),
      'missing': ('ctest10k', 'tfds:imagenet2012', None),
      'bad line': ('ctest10k', 'tfds:imagenet2012',
                   f'{one} 0\n\n n01440764 ILSVRC2012_val_3.JPEG\n'),
      'twice': ('ctest10k', 'tfds:imagenet2012', f'{one}\n{two}\n/a/{one} 7\n'),
      'short': ('ctest10k', 'tfds:imagenet2012', f'{one}\n{two}\n'),
      'val5k list': ('val5k', 'tfds:imagenet2012', f'{one}\n'),
      'coltran file': ('coltran-fid5k', 'tfds:imagenet2012', f'{one}\n'),
      'coltran empty': ('coltran-fid5k', 'tfds:imagenet2012', None),
  }[case]
  file_list = {'missing': tmp_path / 'absent.txt', 'coltran empty': tmp_path}.get(case)
  if text is not None:
    file_list = tmp_path / 'list.txt'
    file_list.write_text(text)
  with pytest.raises(sources.DataError) as error:
    protocols.check(name, source, file_list and str(file_list))
  assert str(error.value) == message.format(tmp=tmp_path)


def _ddcolor_colourfulness(rgb):
  """DDColor's colourfulness of one image in [0, 1], float64: absolute opponent channels."""
  rgb = 255 * rgb.astype(np.float64)
  rg, yb = np.abs(rgb[..., 0] - rgb[..., 1]), np.abs((rgb[..., 0] + rgb[..., 1]) / 2 - rgb[..., 2])
  return np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())


def _gray(rgb):
  """L only: scikit-image's Lab with a = b = 0, back to RGB."""
  lab = skcolor.rgb2lab(rgb)
  return np.clip(skcolor.lab2rgb(np.concatenate([lab[..., :1], 0 * lab[..., 1:]], -1)), 0, 1)


def _val5k_originals(count, size):
  """val5k's first ``count`` images at size², prepared in float64 NumPy, in [0, 1]."""
  return np.stack([_resized(_original(_name(n)), size, _bilinear_weights)
                   for n in range(1, count + 1)]).round().clip(0, 255) / 255


def _check_val5k_rows(rows, originals):
  """The rows that do not depend on the network: DDColor's colourfulness of the originals and
  of the no-colour baseline, and the baseline's PSNR (scikit-image)."""
  gray = np.stack([_gray(x) for x in originals])
  np.testing.assert_allclose(rows['original']['colourfulness'],
                             np.mean([_ddcolor_colourfulness(x) for x in originals]), rtol=2e-3)
  np.testing.assert_allclose(rows['gray']['colourfulness'],
                             np.mean([_ddcolor_colourfulness(x) for x in gray]), atol=0.05)
  np.testing.assert_allclose(
      rows['gray']['psnr'], np.mean([skmetrics.peak_signal_noise_ratio(x, g, data_range=1.0)
                                     for x, g in zip(originals, gray)]), rtol=2e-3)
  return gray


def test_evaluate_val5k_from_the_command_line(trained_run, data_dir, tmp_path, monkeypatch):
  """colorjax evaluate --protocol=val5k on a tiny ImageNet: the 20 images it has of 5,000 (and
  a sentence saying so) and DDColor's colourfulness, against NumPy on the protocol's images;
  without torchvision's weights at hand, FID is skipped in one sentence."""
  monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'empty'))
  result = run_cli('evaluate', f'--workdir={trained_run}', '--protocol=val5k',
                   '--data=tfds:imagenet2012', f'--data_dir={data_dir}', f'--output={tmp_path}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'FID skipped: inception_v3_google-0cc3c7bd.pth' in result.stderr
  report = json.loads((tmp_path / 'step_2-protocol_val5k.json').read_text())
  assert (report['images'], report['expected'], report['resolution']) == (VALIDATION, 5000, 32)
  assert 'fid' not in report
  assert ("Not comparable with published figures: 20 of the protocol's 5000 images"
          in (tmp_path / 'step_2-protocol_val5k.md').read_text())
  _check_val5k_rows(report['rows'], _val5k_originals(VALIDATION, 256))


def test_coltran_fid5k_measures_fid_against_its_reference_set(trained_run, data_dir,
                                                              keras_inception):
  """The disjoint reference set: the originals' own FID against it (the protocol's floor), with
  ColTran's Inception input x255 / 128 - 1, against Keras in float64."""
  model, weight_files = keras_inception
  run = runs.load(str(trained_run))
  protocol = _small('coltran-fid5k', count=5, reference=(10, 15), image_size=64)
  fid = evaluation.load_fid('keras', str(weight_files['keras3']))
  report = evaluation.measure_protocol(run, protocol, fid, data_dir)
  assert report['images'] == 5 and report['fid']['reference_images'] == 5
  assert 'protocol coltran-fid5k (reference)' in report['skipped']
  evaluated = _read(protocols.evaluated_images(protocol, data_dir))
  reference = _read(protocols.reference_images(protocol, data_dir))
  originals, held = (np.stack([image for _, image in d.values()]) / 255
                     for d in (evaluated, reference))
  want = keras_fid(model, originals, held, 255 / 128, -1.0)
  np.testing.assert_allclose(report['rows']['original']['fid'], want, rtol=1e-3)


def test_evaluate_protocol_flags_are_one_sentence(trained_run, tmp_path):
  result = run_cli('evaluate', f'--workdir={trained_run}', '--protocol=ctest10k',
                   '--resolution=32')
  assert result.returncode != 0
  assert result.stderr.strip() == ('colorjax evaluate: Protocol ctest10k takes its images from '
                                   'a file list; give --file_list=PATH of ctest10k.txt.')
  result = run_cli('evaluate', f'--workdir={trained_run}', f'--file_list={tmp_path}')
  assert result.stderr.strip() == 'colorjax evaluate: --file_list goes with --protocol only.'


def test_two_processes_evaluate_a_protocol_as_one_does(trained_run, data_dir, keras_inception,
                                                       tmp_path):
  """launch/local.py: 2 processes of 1 device share val5k's first 5 images unevenly (3 and 2:
  one steps on a padding batch while the other finishes); the report covers all 5, and its FID
  uses DDColor's Inception input, against Keras features in float64."""
  model, weight_files = keras_inception
  output = tmp_path / 'two.json'
  result = subprocess.run(
      [sys.executable, str(ROOT / 'launch' / 'local.py'), '--processes=2',
       '--devices_per_process=1', '--', sys.executable, str(ROOT / 'tests' / 'run_protocol.py'),
       str(trained_run), data_dir, str(weight_files['keras3']), '5', str(output)],
      cwd=ROOT, capture_output=True, text=True, timeout=600,
      env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})
  assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
  report = json.loads(output.read_text())
  assert report['images'] == 5 and report['resolution'] == 32
  originals = _val5k_originals(5, 64)
  gray = _check_val5k_rows(report['rows'], originals)
  # DDColor's Inception input: x / 2 + 1/2, then x * std / 0.5 + (mean - 0.5) / 0.5 per channel.
  mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
  scale, shift = 0.5 * std / 0.5, 0.5 * std / 0.5 + (mean - 0.5) / 0.5
  want = keras_fid(model, gray, originals, scale, shift)
  np.testing.assert_allclose(report['rows']['gray']['fid'], want, rtol=1e-3)
