#!/usr/bin/env python
"""Every table of the paper in one run: Tables 1-5 and Fig. 7.

The same as ``dasjax all`` (the code: dasjax/runners/all.py), from a checkout of the repository:

    python experiments/run_all.py --help
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # runs before ``pip install -e .`` too

from dasjax.runners.common import main_guard  # noqa: E402
from dasjax.runners.all import main  # noqa: E402,F401  (tests and scripts call main(argv))

if __name__ == "__main__":
    sys.exit(main_guard(main))
