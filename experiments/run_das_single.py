#!/usr/bin/env python
"""Figure 7 of the paper (App. B): DAS-single vs DAS on blur, all operations.

The same as ``dasjax das-single`` (the code: dasjax/runners/das_single.py), from a checkout of the repository:

    python experiments/run_das_single.py --help
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # runs before ``pip install -e .`` too

from dasjax.runners.common import main_guard  # noqa: E402
from dasjax.runners.das_single import main  # noqa: E402,F401  (tests and scripts call main(argv))

if __name__ == "__main__":
    sys.exit(main_guard(main))
