#!/usr/bin/env python
"""Curvature study (RobustDARTS): lambda_max of the alpha Hessian per trial, DAS vs DAS-ES vs DAS-ADA.

The same as ``dasjax curvature`` (the code: dasjax/runners/curvature.py), from a checkout of the repository:

    python experiments/run_curvature.py --help
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # runs before ``pip install -e .`` too

from dasjax.runners.common import main_guard  # noqa: E402
from dasjax.runners.curvature import main  # noqa: E402,F401  (tests and scripts call main(argv))

if __name__ == "__main__":
    sys.exit(main_guard(main))
