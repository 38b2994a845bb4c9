"""Files that others read, written whole or not at all."""
import os


def write_whole(path, text):
  """``text`` (str or bytes) to ``path`` through a temporary file next to it, synced and renamed over the old
  one: a reader (or a full disk, or a kill) sees the old file or the new one, never a part."""
  temporary = path + '.tmp'
  try:
    with open(temporary, 'wb' if isinstance(text, bytes) else 'w') as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(temporary, path)
  finally:
    if os.path.exists(temporary):
      os.remove(temporary)
