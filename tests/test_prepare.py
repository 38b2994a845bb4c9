"""``colorjax prepare``: the real TFDS imagenet2012 builder on tiny archives with ImageNet's
layout (a train tar of per-synset tars of JPEGs, a validation tar), then two training steps
from the set it built; a missing manual download is one sentence naming the files and folder."""
import io
import tarfile

from PIL import Image

from colorjax.training import train
from conftest import colour_image, load_config, run_cli

SYNSETS = ('n01440764', 'n01443537')   # the first two of ImageNet's label list


def _jpeg(seed):
  buffer = io.BytesIO()
  Image.fromarray(colour_image(seed, size=(40, 48))).save(buffer, 'JPEG', quality=90)
  return buffer.getvalue()


def _add(archive, name, data):
  info = tarfile.TarInfo(name)
  info.size = len(data)
  archive.addfile(info, io.BytesIO(data))


def write_imagenet_archives(folder, per_synset=3, validation=4):
  folder.mkdir(parents=True)
  with tarfile.open(folder / 'ILSVRC2012_img_train.tar', 'w') as train_tar:
    for c, synset in enumerate(SYNSETS):
      inner = io.BytesIO()
      with tarfile.open(fileobj=inner, mode='w') as synset_tar:
        for i in range(per_synset):
          _add(synset_tar, f'{synset}_{i}.JPEG', _jpeg(10 * c + i))
      _add(train_tar, f'{synset}.tar', inner.getvalue())
  with tarfile.open(folder / 'ILSVRC2012_img_val.tar', 'w') as val_tar:
    for i in range(1, validation + 1):
      _add(val_tar, f'ILSVRC2012_val_{i:08d}.JPEG', _jpeg(100 + i))


def test_prepare_builds_imagenet_from_its_archives_and_training_reads_it(tmp_path):
  write_imagenet_archives(tmp_path / 'manual')
  data = tmp_path / 'tfds'
  result = run_cli('prepare', 'tfds:imagenet2012', f'--manual_dir={tmp_path / "manual"}',
                   f'--data_dir={data}', timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.splitlines()[-1] == (
      f'  --config.data.source=tfds:imagenet2012 --config.data.data_dir={data}')
  assert 'train 6, validation 4 images' in result.stdout
  config = load_config()
  config.data.source, config.data.data_dir = 'tfds:imagenet2012', str(data)
  config.image_size, config.batch_size, config.num_steps = 32, 2, 2
  config.model.features = (4, 8)
  state = train.train_and_evaluate(config, str(tmp_path / 'run'))   # evaluates on 'validation'
  assert int(state.step) == 2


def test_a_missing_manual_download_names_the_files_and_the_folder(tmp_path):
  (tmp_path / 'manual').mkdir()
  result = run_cli('prepare', 'tfds:imagenet2012', f'--manual_dir={tmp_path / "manual"}',
                   f'--data_dir={tmp_path / "tfds"}')
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1].startswith(
      "colorjax prepare: TFDS data set 'imagenet2012' is built from files you download "
      f"yourself: put ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar in {tmp_path / 'manual'}")
  assert not (tmp_path / 'tfds' / 'imagenet2012').exists()


def test_prepare_takes_one_tfds_name(tmp_path):
  result = run_cli('prepare', 'folder:/photos')
  assert result.returncode == 2
  assert result.stderr.strip() == ('colorjax prepare: give one data set as tfds:NAME (e.g. '
                                   'colorjax prepare tfds:imagenet2012 --manual_dir=DIR).')
