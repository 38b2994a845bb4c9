"""``python -m colorjax.main --config=… --workdir=…``: ``colorjax train`` for launch scripts."""
import sys

from colorjax import cli

if __name__ == '__main__':
  sys.exit(cli.main([sys.argv[0], 'train'] + sys.argv[1:]))
