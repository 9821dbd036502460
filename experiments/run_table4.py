#!/usr/bin/env python
"""Table 4 of the paper: 2D image denoising (BSDS300) in the sequential space, good operations only.

The same as ``dasjax table4`` (the code: dasjax/runners/table4.py), from a checkout of the repository:

    python experiments/run_table4.py --help
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # runs before ``pip install -e .`` too

from dasjax.runners.common import main_guard  # noqa: E402
from dasjax.runners.table4 import main  # noqa: E402,F401  (tests and scripts call main(argv))

if __name__ == "__main__":
    sys.exit(main_guard(main))
