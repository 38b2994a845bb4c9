"""``python -m colorjax.cli``: the ``colorjax`` command."""
import sys

from colorjax import cli

sys.exit(cli.main())
