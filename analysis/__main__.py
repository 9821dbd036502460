"""Command line: write a report from one or many results folders, or check them.

    python -m analysis RESULTS_DIR [RESULTS_DIR ...] --out REPORT_DIR [--reference table1] [--threshold 9]
    python -m analysis check RESULTS_DIR [RESULTS_DIR ...]

Exit codes: 0 done; 1 (check) a row is damaged; 2 bad input or a damaged or malformed folder;
3 the file system refused a write (full, read-only, no permission).
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import check
from .correlation import DEFAULT_THRESHOLD
from .files import EXIT_MACHINE, describe_os_error, is_machine_error
from .load import ResultsFormatError, load_results
from .reference import REFERENCES
from .report import FIGURE_FORMATS, write_report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Statistics, correlations, tables and figures from saved DAS results folders. "
                    "'python -m analysis check RESULTS' lists each row's state instead.")
    parser.add_argument("results", nargs="+", help="results folder(s), or folders holding several")
    parser.add_argument("--out", required=True, help="report folder (created if missing)")
    parser.add_argument("--reference", choices=sorted(REFERENCES), default=None,
                        help="print the paper's values beside ours as 'ours (paper, Δ)'")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="degenerate PSNR threshold in dB (App. A; default %(default)s)")
    parser.add_argument("--ddof", type=int, default=0, help="std degrees of freedom (default 0)")
    parser.add_argument("--n-resamples", type=int, default=9999, help="bootstrap resamples (default 9999)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--no-figures", action="store_true", help="skip the figures")
    parser.add_argument("--figure-format", choices=FIGURE_FORMATS, default="png",
                        help="png, or a vector format for a paper (pdf, svg); default %(default)s")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["check"]:
        return check.main(argv[1:])
    args = parse_args(argv)
    try:
        df = load_results(args.results)
    except (ResultsFormatError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        path = write_report(df, args.out, reference=args.reference, threshold=args.threshold, ddof=args.ddof,
                            n_resamples=args.n_resamples, seed=args.seed, figures=not args.no_figures,
                            figure_format=args.figure_format)
    except OSError as err:
        if not is_machine_error(err):
            raise
        print(f"error: {describe_os_error(err)}; the report in {args.out} is incomplete (every file in it is "
              f"whole); rerun the same command", file=sys.stderr)
        return EXIT_MACHINE
    print(f"wrote {path} ({len(df)} trials)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
