"""The ``dasjax`` command (also ``python -m dasjax``): the paper's experiments and the tools around them.

    dasjax table1 --preset smoke     a table of the paper (table1 ... table5, das-single, curvature,
                                     variants); dasjax table1 --help lists its options
    dasjax all --preset cpu          every table in one run, with a time estimate first
    dasjax hpo --preset smoke        Hyperband / BOHB over the hyperparameters
    dasjax fields [SECTION]          every config field: flat name, default, accepted values, meaning
    dasjax check RESULTS ...         each row of a results folder: complete, damaged, running, ...
    dasjax report RESULTS --out DIR  the analysis report of results folders (python -m analysis)
    dasjax version

In a checkout of the repository ``python experiments/run_table1.py`` is the same as ``dasjax
table1``.  Exit codes: 0 done, 1 a failed table (all) or a damaged row (check), 2 bad input,
3 the file system refused a write.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence


def _fields(args) -> int:
    from .field_docs import fields_text
    try:
        print(fields_text(args.section))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def _version(args) -> int:
    from . import __version__
    print(__version__)
    return 0


# command -> (module of dasjax.runners, one line of help)
RUNNERS = {
    "table1": ("table1", "Table 1: the sequential space, single ops, DAS and random baselines"),
    "table2": ("table2", "Table 2: the cell (non-sequential) space"),
    "table3": ("table3", "Table 3 and Fig. 5: DAS under five hyperparameter sets"),
    "table4": ("table4", "Table 4: 2D image denoising (BSDS300)"),
    "table5": ("table5", "Table 5: the cell space on cosine data"),
    "das-single": ("das_single", "Figure 7: DAS-single against DAS"),
    "curvature": ("curvature", "the alpha-Hessian's curvature, RobustDARTS early stopping and ADA"),
    "variants": ("variants", "DAS variants (GDAS, DrNAS, SDARTS, ...) side by side"),
    "all": ("all", "every table in one run (Tables 1-5, Fig. 7), with a time estimate"),
    "hpo": ("hpo", "hyperparameter optimisation (Hyperband / BOHB) of DAS"),
}


def _run_runner(command: str, argv: list[str]) -> int:
    import importlib
    from .runners.common import main_guard
    runner = importlib.import_module(f"dasjax.runners.{RUNNERS[command][0]}")
    return main_guard(runner.main, argv, program=f"dasjax {command}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="dasjax", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command, (_, line) in RUNNERS.items():      # each runner parses its own options
        sub.add_parser(command, help=line, add_help=False)
    p = sub.add_parser("fields", help="list every config field (--set NAME=VALUE, make_config(NAME=...))")
    p.add_argument("section", nargs="?", default=None,
                   help="one section: problem, space, schedule, search, retrain or run (default: all)")
    p.set_defaults(run=_fields)
    sub.add_parser("check", help="list each row of results folders with its state", add_help=False)
    sub.add_parser("report", help="write the analysis report of results folders", add_help=False)
    sub.add_parser("version", help="print the version").set_defaults(run=_version)
    if argv[:1] == ["das_single"]:
        argv[0] = "das-single"
    if argv and argv[0] in RUNNERS:
        return _run_runner(argv[0], argv[1:])
    if argv[:1] == ["check"]:                      # the analysis parses its own options
        from analysis.check import main as check_main
        return check_main(argv[1:])
    if argv[:1] == ["report"]:
        from analysis.__main__ import main as report_main
        return report_main(argv[1:])
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return args.run(args)
