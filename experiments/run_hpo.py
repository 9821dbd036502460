#!/usr/bin/env python
"""Hyperparameter optimisation of DAS (paper §4.1, App. E): Hyperband with random or BOHB-style TPE proposals.

The same as ``dasjax hpo`` (the code: dasjax/runners/hpo.py), from a checkout of the repository:

    python experiments/run_hpo.py --help
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # runs before ``pip install -e .`` too

from dasjax.runners.common import main_guard  # noqa: E402
from dasjax.runners.hpo import main  # noqa: E402,F401  (tests and scripts call main(argv))

if __name__ == "__main__":
    sys.exit(main_guard(main))
