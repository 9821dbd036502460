"""``python -m dasjax``: the ``dasjax`` command (:mod:`dasjax.cli`)."""
import sys

from .cli import main

sys.exit(main())
