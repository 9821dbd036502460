#!/usr/bin/env python
"""Table 2 of the paper: non-sequential (cell) space, 6 method rows x {blur, downsampling}, Figs. 8 and 11.

The same as ``dasjax table2`` (the code: dasjax/runners/table2.py), from a checkout of the repository:

    python experiments/run_table2.py --help
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # runs before ``pip install -e .`` too

from dasjax.runners.common import main_guard  # noqa: E402
from dasjax.runners.table2 import main  # noqa: E402,F401  (tests and scripts call main(argv))

if __name__ == "__main__":
    sys.exit(main_guard(main))
