"""``python -m host``: see :mod:`host.cli`."""

import sys

from host.cli import main

if __name__ == "__main__":
    sys.exit(main())
