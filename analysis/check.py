"""The state of every row of a results folder, so a damaged row is named, never read as results.

A *row* is a folder of trials (``trials.csv``, ``config.json``, ``arrays.npz``, ``manifest.json``),
e.g. ``OUT/runs/blur/das_good`` of a table runner.  Its state is one of

- ``complete``: its manifest matches its files (:mod:`analysis.files`), trials.csv parses and holds
  the recorded number of trials.  A row written before manifests existed is checked the same
  way without checksums: every file must parse and the trial count match its config.json;
- ``damaged``: a file is missing, truncated, unparsable or different from its manifest;
- ``running``: not finished, and a live run holds the folder's lock and this row's checkpoint;
- ``interrupted``: not finished, its checkpoint is kept and no run holds the folder: rerunning the
  same command resumes it;
- ``missing``: not started (a runner writes the rows it will fill to ``plan.json``).

``python -m analysis check RESULTS`` lists them; the runners check every row before they skip it
as done, and move a damaged one aside (:func:`move_aside`) before they compute it again.
"""
from __future__ import annotations

import argparse
import os
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from . import folder_lock
from .files import DAMAGED_DIR, MANIFEST_FILE, atomic_write_text, read_manifest
from .load import TRIALS_FILE, folders_holding, innermost, row_problem, verify_row

PLAN_FILE = "plan.json"
CHECKPOINT_DIR = "checkpoint"
STATES = ("complete", "damaged", "running", "interrupted", "missing")


@dataclass(frozen=True)
class RowState:
    path: Path
    state: str                   # one of STATES
    detail: str                  # one line: what it holds, or what is wrong and in which file
    trials: int | None = None


def write_plan(out, rows: Sequence) -> None:
    """Add the row folders a run will fill to ``out/plan.json`` (paths relative to ``out``), so a
    check can name the ones not started yet.  Rows planned by earlier runs on the folder stay."""
    out = Path(out)
    rel = sorted({p.relative_to(out).as_posix() for p in _plan(out)} |
                 {Path(r).relative_to(out).as_posix() for r in rows})
    atomic_write_text(out / PLAN_FILE, json.dumps({"rows": rel}, indent=2) + "\n")


def planned_rows(root) -> list[Path]:
    """The row folders the runs on the results folder ``root`` planned (``plan.json``; [] without one)."""
    return _plan(Path(root))


def _plan(root: Path) -> list[Path]:
    try:
        rows = json.loads((root / PLAN_FILE).read_text())["rows"]
        return [root / r for r in rows if isinstance(r, str)]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _lock_owner(folder: Path, root: Path) -> dict | None:
    for f in [folder, *folder.parents]:
        owner = folder_lock.owner(f)
        if owner is not None:
            return owner
        if f == root:
            break
    return None


def row_state(folder, root=None) -> RowState:
    """The state of one row folder (``root``: the results folder whose lock and layout count)."""
    folder = Path(folder)
    root = Path(root) if root is not None else folder
    if (folder / TRIALS_FILE).exists() or (folder / MANIFEST_FILE).exists():
        problem, trials = verify_row(folder)
        if problem:
            return RowState(folder, "damaged", problem)
        n = len(trials)
        legacy = "" if read_manifest(folder) else ", written before manifests (parsed and counted)"
        return RowState(folder, "complete", f"{n} trials{legacy}", n)
    checkpoint = next((c for c in (folder / CHECKPOINT_DIR, folder.parent / CHECKPOINT_DIR) if c.is_dir()), None)
    owner = _lock_owner(folder, root)
    if checkpoint is not None and owner is not None and owner["alive"] is not False:
        who = f"pid {owner['pid']} on {owner['host']} since {owner.get('started', '?')}"
        return RowState(folder, "running", who if owner["alive"] else f"locked by {who}, which cannot be checked "
                        "from this host")
    if checkpoint is not None:
        return RowState(folder, "interrupted", f"checkpoint kept in {checkpoint.relative_to(root).as_posix()}/; "
                        "rerun the same command to resume")
    live = owner is not None and owner["alive"] is not False
    return RowState(folder, "missing", "not started yet by the running run" if live else "not started")


def _row_folders(root: Path) -> list[Path]:
    """Folders holding trials or a manifest (the innermost ones, outside damaged/) and the planned rows."""
    return innermost(folders_holding(root, TRIALS_FILE, MANIFEST_FILE) | set(_plan(root)))


def check_results(root: str | os.PathLike[str]) -> list[RowState]:
    """Every row of the results folder ``root``, plus its gathered tables (``root/trials.csv``
    beside the rows) when it has them."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"results folder {str(root)!r} does not exist")
    rows = _row_folders(root)
    states = [row_state(d, root) for d in rows]
    if rows != [root] and (root / TRIALS_FILE).exists():
        problem = row_problem(root)           # manifest, parse and trial count of the gathered table
        states.append(RowState(root, "damaged" if problem else "complete",
                               problem + "; rerunning the runner gathers it again" if problem
                               else "the gathered table of the rows"))
    return states


def move_aside(root, folder) -> Path:
    """Move a damaged row to ``root/damaged/<time>/<its path>`` (kept, never deleted); return where."""
    root, folder = Path(root), Path(folder)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = root / DAMAGED_DIR / stamp / folder.relative_to(root)
    k = 1
    while dest.exists():
        k += 1
        dest = root / DAMAGED_DIR / f"{stamp}-{k}" / folder.relative_to(root)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(folder), str(dest))
    return dest


def format_states(states: Sequence[RowState], root) -> str:
    root = Path(root)
    names = [s.path.relative_to(root).as_posix() if s.path != root else "(gathered tables)" for s in states]
    width = max([len(n) for n in names] + [4])
    lines = [f"{n:<{width}}  {s.state:<11}  {s.detail}" for n, s in zip(names, states)]
    counts = {k: sum(s.state == k for s in states) for k in STATES}
    lines.append(", ".join(f"{v} {k}" for k, v in counts.items() if v) or "no rows")
    aside = root / DAMAGED_DIR
    if aside.is_dir():
        lines.append(f"earlier damaged rows are kept in {aside}/ (not read as results)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m analysis check RESULTS ...``: exit 1 if any row is damaged, 2 on bad input."""
    parser = argparse.ArgumentParser(
        prog="python -m analysis check",
        description="List every row of one or many results folders with its state "
                    "(complete, damaged, running, interrupted, missing); exit code 1 if any is damaged.")
    parser.add_argument("results", nargs="+", help="results folder(s)")
    args = parser.parse_args(argv)
    damaged = False
    for root in args.results:
        try:
            states = check_results(root)
        except FileNotFoundError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        if len(args.results) > 1:
            print(f"{root}:")
        print(format_states(states, root))
        damaged |= any(s.state == "damaged" for s in states)
    return 1 if damaged else 0
