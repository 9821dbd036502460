#!/usr/bin/env python
"""DAS variants side by side: DARTS (the paper's DAS) and every registered variant, good and all ops.

The same as ``dasjax variants`` (the code: dasjax/runners/variants.py), from a checkout of the repository:

    python experiments/run_variants.py --help
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # runs before ``pip install -e .`` too

from dasjax.runners.common import main_guard  # noqa: E402
from dasjax.runners.variants import main  # noqa: E402,F401  (tests and scripts call main(argv))

if __name__ == "__main__":
    sys.exit(main_guard(main))
