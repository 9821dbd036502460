#!/usr/bin/env python
"""Table 3 of the paper: DAS in the sequential space under five hyperparameter sets, and Figure 5.

The same as ``dasjax table3`` (the code: dasjax/runners/table3.py), from a checkout of the repository:

    python experiments/run_table3.py --help
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # runs before ``pip install -e .`` too

from dasjax.runners.common import main_guard  # noqa: E402
from dasjax.runners.table3 import main  # noqa: E402,F401  (tests and scripts call main(argv))

if __name__ == "__main__":
    sys.exit(main_guard(main))
