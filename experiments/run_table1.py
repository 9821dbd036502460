#!/usr/bin/env python
"""Table 1 of the paper: sequential space, 8 method rows x {blur, downsampling}, and Figures 3, 4, 6.

The same as ``dasjax table1`` (the code: dasjax/runners/table1.py), from a checkout of the repository:

    python experiments/run_table1.py --help
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # runs before ``pip install -e .`` too

from dasjax.runners.common import main_guard  # noqa: E402
from dasjax.runners.table1 import main  # noqa: E402,F401  (tests and scripts call main(argv))

if __name__ == "__main__":
    sys.exit(main_guard(main))
