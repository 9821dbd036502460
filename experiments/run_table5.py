#!/usr/bin/env python
"""Table 5 of the paper: DAS in the cell (non-sequential) space on blur under seven hyperparameter sets.

The same as ``dasjax table5`` (the code: dasjax/runners/table5.py), from a checkout of the repository:

    python experiments/run_table5.py --help
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # runs before ``pip install -e .`` too

from dasjax.runners.common import main_guard  # noqa: E402
from dasjax.runners.table5 import main  # noqa: E402,F401  (tests and scripts call main(argv))

if __name__ == "__main__":
    sys.exit(main_guard(main))
