"""pytorch-fid's Inception networks with seeded random weights: the independent reference for
colorjax's FID networks. Imports torch: only from tests that need it (or skip without it).

`python -m tests.fid_reference` rewrites tests/data/fid_inception_reference.npz, the features
pytorch-fid computes, for the machines without torch (CI).
"""
import pathlib
import sys
import types
import zlib

import numpy as np

REFERENCE = pathlib.Path(__file__).parent / 'data' / 'fid_inception_reference.npz'
NETWORKS = ('standard', 'torchvision')
IMAGE_SHAPE = (2, 256, 400, 3)  # upsampled to 299 in height, downsampled in width


def images():
  return np.random.default_rng(7).integers(0, 256, IMAGE_SHAPE, dtype=np.uint8)


def random_weight(name, shape):
  """A value for state-dict entry ``name``, the same on every machine: He-scaled kernels, batch
  norms near identity."""
  rng = np.random.default_rng([11, zlib.crc32(name.encode())])
  shape = tuple(shape)
  if name.endswith('conv.weight'):
    return rng.normal(0, np.sqrt(2 / np.prod(shape[1:])), shape).astype(np.float32)
  if name.endswith(('bn.weight', 'running_var')):
    return rng.uniform(0.5, 1.5, shape).astype(np.float32)
  if name.endswith('num_batches_tracked'):
    return np.zeros(shape, np.int64)
  return rng.normal(0, 0.1, shape).astype(np.float32)


def import_pytorch_fid():
  """pytorch_fid.inception. torchvision's wheels from PyPI are CUDA builds whose native ops do
  not load next to a CPU torch; its Python models do, so the op registrations are left out."""
  import torch  # noqa: F401  (fails first without torch)
  sys.modules.setdefault('torchvision._meta_registrations',
                         types.ModuleType('torchvision._meta_registrations'))
  from pytorch_fid import inception
  return inception


def state_dict(keys_and_shapes):
  import torch
  return {name: torch.from_numpy(random_weight(name, shape)) for name, shape in keys_and_shapes}


def torch_network(network):
  """pytorch-fid's InceptionV3 feature extractor (final pool, resize and [-1, 1] scaling on) for
  ``network``, with the seeded random weights in place of the downloaded ones."""
  fid = import_pytorch_fid()
  import torchvision
  blank = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False,
                                          num_classes=1008)
  weights = state_dict((k, v.shape) for k, v in blank.state_dict().items())

  def torchvision_inception(**unused):
    blank.load_state_dict(weights)
    return blank

  original = fid.load_state_dict_from_url, fid._inception_v3
  fid.load_state_dict_from_url = lambda *args, **kwargs: weights
  fid._inception_v3 = torchvision_inception
  try:
    model = fid.InceptionV3([3], use_fid_inception=network == 'standard')
  finally:
    fid.load_state_dict_from_url, fid._inception_v3 = original
  return model.eval(), weights


def torch_features(network, pixels):
  import torch
  model, _ = torch_network(network)
  with torch.no_grad():
    x = torch.from_numpy(pixels.astype(np.float32) / 255).permute(0, 3, 1, 2)
    return model(x)[0][:, :, 0, 0].numpy()


if __name__ == '__main__':
  REFERENCE.parent.mkdir(exist_ok=True)
  np.savez_compressed(REFERENCE, **{n: torch_features(n, images()) for n in NETWORKS})
  print(f'Wrote {REFERENCE}.')
