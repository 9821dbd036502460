"""The ``dasjax`` command (also ``python -m dasjax``): what an installed package can do from the shell.

    dasjax fields [SECTION]          every config field: flat name, default, accepted values, meaning
    dasjax check RESULTS ...         each row of a results folder: complete, damaged, running, ...
    dasjax report RESULTS --out DIR  the analysis report of results folders (python -m analysis)
    dasjax version

The paper's table runners live in the repository's ``experiments/`` folder
(``python experiments/run_table1.py --help``).  Exit codes: 0 done, 1 a damaged row (check),
2 bad input, 3 the file system refused a write.
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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="dasjax", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("fields", help="list every config field (--set NAME=VALUE, make_config(NAME=...))")
    p.add_argument("section", nargs="?", default=None,
                   help="one section: problem, space, schedule, search, retrain or run (default: all)")
    p.set_defaults(run=_fields)
    sub.add_parser("check", help="list each row of results folders with its state", add_help=False)
    sub.add_parser("report", help="write the analysis report of results folders", add_help=False)
    sub.add_parser("version", help="print the version").set_defaults(run=_version)
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
