"""``python -m fastvpc``: the ``fastvpc`` command."""

import sys

from fastvpc.cli import main

sys.exit(main())
