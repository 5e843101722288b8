"""``python -m symode.cli``: the same as the ``symode`` command."""
import sys

from . import main

sys.exit(main())
