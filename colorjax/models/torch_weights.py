"""PyTorch weight files (``torch.save`` of a state dict) read without PyTorch and without running
code from the file.

A ``.pth`` file is a pickle whose tensors point into raw storages: in a zip archive
(``NAME/data.pkl`` + ``NAME/data/KEY``, torch >= 1.6) or, in the legacy format, in records that
follow the pickle in the same stream. The unpickler here resolves only the names a state dict
needs (an ordered dict, the tensor rebuilder, the storage types) to local stand-ins and refuses
every other global, so a hostile file cannot run code; tensors come back as NumPy arrays.
"""
import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np

from colorjax.core.validation import UserError

_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_STORAGE_DTYPES = {
    'FloatStorage': np.float32, 'DoubleStorage': np.float64, 'HalfStorage': np.float16,
    'LongStorage': np.int64, 'IntStorage': np.int32, 'ShortStorage': np.int16,
    'CharStorage': np.int8, 'ByteStorage': np.uint8, 'BoolStorage': np.bool_,
}


class _Storage(collections.namedtuple('_Storage', 'dtype key')):
  """A storage the pickle refers to; its bytes are looked up by ``key`` once all are read."""


class _Tensor(collections.namedtuple('_Tensor', 'storage offset size stride')):
  pass


def _rebuild_tensor(storage, offset, size, stride, *unused):
  return _Tensor(storage, offset, tuple(size), tuple(stride))


class _Unpickler(pickle.Unpickler):
  """Resolves the globals of a state dict to stand-ins; refuses any other."""

  def __init__(self, file, path):
    super().__init__(file)
    self.path = path

  def find_class(self, module, name):
    if (module, name) == ('collections', 'OrderedDict'):
      return collections.OrderedDict
    if (module, name) == ('torch._utils', '_rebuild_tensor_v2'):
      return _rebuild_tensor
    if module == 'torch' and name in _STORAGE_DTYPES:
      return _STORAGE_DTYPES[name]
    raise UserError(f'{self.path} refers to {module}.{name}, which a file of weights does not '
                    'need; it is not read (use a state dict saved with torch.save).')

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == 'storage'
            and pid[1] in _STORAGE_DTYPES.values()):
      raise UserError(f'{self.path} has a storage record colorjax does not know ({pid!r:.80}).')
    return _Storage(np.dtype(pid[1]), str(pid[2]))


def _array(tensor, data, path, name):
  """The tensor's values from its storage's bytes (little-endian), as a contiguous array."""
  storage = np.frombuffer(data[tensor.storage.key], tensor.storage.dtype.newbyteorder('<'))
  empty = 0 in tensor.size
  last = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.size, tensor.stride))
  if len(tensor.stride) != len(tensor.size) or (not empty and (
      min(tensor.stride, default=0) < 0 or tensor.offset < 0 or last >= len(storage))):
    raise UserError(f'{path}: tensor {name!r} reaches past its storage; the file is damaged.')
  itemsize = storage.itemsize
  view = np.lib.stride_tricks.as_strided(
      storage[tensor.offset:], tensor.size, tuple(s * itemsize for s in tensor.stride),
      writeable=False)
  return np.array(view, dtype=tensor.storage.dtype.newbyteorder('='))


def _read_zip(path):
  with zipfile.ZipFile(path) as archive:
    names = archive.namelist()
    pickles = [n for n in names if n.endswith('/data.pkl') and n.count('/') == 1]
    if len(pickles) != 1:
      raise UserError(f'{path} is a zip archive but not a PyTorch file (no NAME/data.pkl).')
    root = pickles[0][:-len('data.pkl')]
    with archive.open(pickles[0]) as f:
      state = _Unpickler(f, path).load()
    keys = {t.storage.key for t in _tensors(state, path).values()}
    missing = [k for k in keys if f'{root}data/{k}' not in names]
    if missing:
      raise UserError(f'{path} lacks the storage {root}data/{missing[0]}; the file is damaged.')
    return state, {key: archive.read(f'{root}data/{key}') for key in keys}


def _read_legacy(path):
  """The pre-1.6 format: magic, protocol, system info, the state pickle, the storage keys, then
  per storage its element count (int64) and bytes."""
  with open(path, 'rb') as f:
    header = [_Unpickler(f, path).load() for _ in range(3)]
    if header[0] != _LEGACY_MAGIC:
      raise UserError(f'{path} is not a PyTorch weight file.')
    state = _Unpickler(f, path).load()
    keys = _Unpickler(f, path).load()
    storages = {t.storage.key: t.storage for t in _tensors(state, path).values()}
    data = {}
    for key in keys:
      storage = storages.get(str(key))
      (count,) = struct.unpack('<q', _read_exactly(f, 8, path, key))
      if not 0 <= count <= os.fstat(f.fileno()).st_size:
        raise UserError(f'{path}: storage {key} claims {count} elements; the file is damaged.')
      data[str(key)] = _read_exactly(f, count * (storage.dtype.itemsize if storage else 1),
                                     path, key)
    return state, data


def _read_exactly(f, size, path, key):
  raw = f.read(size)
  if len(raw) != size:
    raise UserError(f'{path} ends inside storage {key}; the file is truncated.')
  return raw


def _tensors(state, path):
  """The state dict's tensors by name (nested dicts joined with '.'), non-tensors left out."""
  if not isinstance(state, dict):
    raise UserError(f'{path} holds a {type(state).__name__}, not a state dict of tensors.')
  found = {}
  for name, value in state.items():
    if isinstance(value, _Tensor):
      found[str(name)] = value
    elif isinstance(value, dict):
      found.update({f'{name}.{k}': v for k, v in _tensors(value, path).items()})
  return found


def read_pth(path):
  """Parameter name -> NumPy array of a PyTorch state-dict file; UserError for anything else."""
  try:
    state, data = _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
    tensors = _tensors(state, path)
    if not tensors:
      raise UserError(f'{path} holds no tensors.')
    return {name: _array(t, data, path, name) for name, t in tensors.items()}
  except UserError:
    raise
  except (OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, struct.error, KeyError,
          ValueError, TypeError, IndexError, AttributeError, io.UnsupportedOperation) as e:
    raise UserError(f'{path} is not a readable PyTorch weight file ({type(e).__name__}: '
                    f'{e}); download it again.') from None
