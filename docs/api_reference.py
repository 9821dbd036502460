#!/usr/bin/env python
"""Build the API reference of dasjax and analysis from their docstrings (HTML, with pdoc).

    pip install pdoc && python docs/api_reference.py site/api      # then open site/api/index.html

Every module of both packages gets a page (the runners and the analysis's helpers included);
tests/test_packaging.py builds it, so a reference that no longer builds fails the tests.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PACKAGES = ("dasjax", "analysis")


def modules() -> list[str]:
    """Every importable module of :data:`PACKAGES`, packages first."""
    names = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        names.append(package)
        names += [m.name for m in pkgutil.walk_packages(root.__path__, prefix=package + ".")
                  if not m.name.rsplit(".", 1)[-1].startswith("_")]
    return names


def build(out: Path) -> tuple[list[str], list[str]]:
    """Write the reference to ``out``; returns the modules documented and pdoc's warnings (a
    docstring or annotation it could not read), less the two expected ones filtered here."""
    import pdoc
    names = modules()
    pdoc.render.configure(docformat="restructuredtext", search=True, show_source=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # optax's OptState alias names a type pdoc cannot import
        warnings.filterwarnings("ignore", message="Error parsing type annotation optax")
        # a package's page already adds the submodules it exports; the rest are named here
        warnings.filterwarnings("ignore", message="The module specification")
        pdoc.pdoc(*names, output_directory=Path(out))
    return names, [str(w.message) for w in caught]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, nargs="?", default=Path("site/api"), help="folder (default site/api)")
    args = ap.parse_args(argv)
    names, problems = build(args.out)
    for line in problems:
        print(f"warning: {line}", file=sys.stderr)
    print(f"{len(names)} modules documented in {args.out}/ (open {args.out / 'index.html'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
