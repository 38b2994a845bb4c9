"""colorjax's FID Inception networks against pytorch-fid's, and the PyTorch weight-file reader
against files torch wrote. With torch installed the references are computed here; without it
(CI) from tests/data, which `python -m tests.fid_reference` wrote with pytorch-fid."""
import pathlib
import pickle
import zipfile

import jax.numpy as jnp
import numpy as np
import pytest

from colorjax.core.validation import UserError
from colorjax.models import inception, torch_weights
from tests import fid_reference

DATA = pathlib.Path(__file__).parent / 'data'


def have_torch():
  try:
    fid_reference.import_pytorch_fid()
    return True
  except ImportError:
    return False


def write_state_dict(path, network):
  """The seeded random weights of ``network`` as a torch.save file."""
  import torch
  _, weights = fid_reference.torch_network(network)
  torch.save(weights, path)


@pytest.mark.parametrize('network', fid_reference.NETWORKS)
def test_features_match_pytorch_fid_with_random_weights(network, tmp_path):
  pixels = fid_reference.images()
  if have_torch():
    path = tmp_path / 'weights.pth'
    write_state_dict(path, network)
    variables = inception.load_params(path, network)
    expected = fid_reference.torch_features(network, pixels)
  else:
    shapes = inception._kernel_shapes(inception.NETWORKS[network])
    variables = _variables_without_torch(shapes)
    expected = np.load(fid_reference.REFERENCE)[network]
  ours = np.asarray(inception.features(variables, jnp.asarray(pixels), network))
  assert ours.shape == (2, inception.FEATURES)
  scale = np.abs(expected).max()
  assert np.abs(ours - expected).max() / scale < 1e-4


def test_the_networks_differ_where_their_definitions_do():
  """The standard and torchvision features of the same weights differ (pools), so a test above
  cannot pass with the wrong variant."""
  reference = np.load(fid_reference.REFERENCE)
  gap = np.abs(reference['standard'] - reference['torchvision']).max()
  assert gap > 1e-2 * np.abs(reference['standard']).max()


def _variables_without_torch(shapes):
  """load_params's variables built from fid_reference's seeded weights directly."""
  params, stats = {}, {}
  for i, (name, (kh, kw, cin, cout)) in enumerate(zip(inception.TORCH_NAMES, shapes)):
    w = lambda key, shape: jnp.asarray(fid_reference.random_weight(f'{name}.{key}', shape))
    params[f'ConvBN_{i}'] = {
        'conv': {'kernel': w('conv.weight', (cout, cin, kh, kw)).transpose(2, 3, 1, 0)},
        'bn': {'scale': w('bn.weight', (cout,)), 'bias': w('bn.bias', (cout,))}}
    stats[f'ConvBN_{i}'] = {'bn': {'mean': w('bn.running_mean', (cout,)),
                                   'var': w('bn.running_var', (cout,))}}
  return {'params': params, 'batch_stats': stats}


def expected_small_state():
  """What tests/data/small_state_dict_*.pth hold, computed in NumPy."""
  base = np.arange(12, dtype=np.float32).reshape(3, 4)
  return {'base': base, 'transposed': base.T, 'rows': base[1:], 'scalar': np.array(7),
          'half': np.arange(4, dtype=np.float16), 'nested.flag': np.array([True, False])}


def write_small_state(path, legacy):
  import torch
  base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
  state = {'base': base, 'transposed': base.t(), 'rows': base[1:], 'scalar': torch.tensor(7),
           'half': torch.arange(4, dtype=torch.float16),
           'nested': {'flag': torch.tensor([True, False])}}
  torch.save(state, path, _use_new_zipfile_serialization=not legacy)


@pytest.mark.parametrize('fmt', ['zip', 'legacy'])
def test_reader_returns_what_torch_saved(fmt, tmp_path):
  """Shared storages, offsets, strides, a scalar, float16, bool, nested dicts; both formats."""
  path = DATA / f'small_state_dict_{fmt}.pth'
  if have_torch():
    path = tmp_path / 'state.pth'
    write_small_state(path, fmt == 'legacy')
  found = torch_weights.read_pth(path)
  expected = expected_small_state()
  assert sorted(found) == sorted(expected)
  for name, value in expected.items():
    assert found[name].dtype == value.dtype and found[name].shape == value.shape, name
    np.testing.assert_array_equal(found[name], value)


class _Hostile:
  def __reduce__(self):
    import os
    return os.system, ('touch HACKED',)


def test_reader_runs_no_code_and_refuses_damaged_files_in_one_sentence(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  hostile = tmp_path / 'hostile.pth'
  with zipfile.ZipFile(hostile, 'w') as archive:
    archive.writestr('archive/data.pkl', pickle.dumps({'x': _Hostile()}, protocol=2))
  good = (DATA / 'small_state_dict_zip.pth').read_bytes()
  truncated, text = tmp_path / 'truncated.pth', tmp_path / 'text.pth'
  truncated.write_bytes(good[:len(good) // 2])
  text.write_text('not weights')
  legacy_cut = tmp_path / 'legacy_cut.pth'
  legacy_cut.write_bytes((DATA / 'small_state_dict_legacy.pth').read_bytes()[:-10])
  for path, words in ((hostile, 'refers to posix.system'), (truncated, 'not a readable'),
                      (text, 'not a readable'), (legacy_cut, 'truncated')):
    with pytest.raises(UserError) as error:
      torch_weights.read_pth(path)
    message = str(error.value)
    assert str(path) in message and words in message and '\n' not in message, message
  assert not (tmp_path / 'HACKED').exists()


def test_a_weight_file_of_another_network_names_the_tensor(tmp_path):
  path = DATA / 'small_state_dict_zip.pth'
  with pytest.raises(UserError, match=r'Conv2d_1a_3x3.conv.weight has no such tensor.*'
                                      r'pt_inception-2015-12-05'):
    inception.load_params(path, 'standard')
