"""Load saved results folders into one tidy DataFrame (one row per trial).

A results folder holds `trials.csv` (one row per trial), `config.json` (the
config that produced it) and optionally `arrays.npz` (per-trial curves keyed
"{trial_id}/{name}"). The analysis only ever works from these files, so any
study that writes the same format gets the same statistics and figures.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Iterable, Union

import numpy as np
import pandas as pd

from .files import DAMAGED_DIR, MANIFEST_FILE, manifest_problem, read_manifest

PathLike = Union[str, os.PathLike]

TRIALS_FILE = "trials.csv"
CONFIG_FILE = "config.json"
ARRAYS_FILE = "arrays.npz"

STRING_COLUMNS = (
    "trial_id", "experiment", "space", "problem", "op_set", "method", "hparams",
    "architecture", "alpha_softmax", "ops",
)
FLOAT_COLUMNS = ("one_shot_psnr", "arch_psnr", "wall_time_s")
REQUIRED_COLUMNS = (
    "trial_id", "experiment", "space", "problem", "op_set", "method", "hparams", "seed",
    "one_shot_psnr", "arch_psnr", "architecture", "alpha_softmax", "ops", "diverged",
    "wall_time_s",
)

_TRUE = {"true", "1", "yes", "y", "t", "1.0"}
_FALSE = {"false", "0", "no", "n", "f", "0.0", ""}


class ResultsFormatError(ValueError):
    """A results folder is missing, empty or malformed (message names the folder)."""


def find_results_dirs(path: PathLike) -> list[Path]:
    """Results folders at or below `path`: every folder holding trials.csv that has no such
    folder below it (sorted), so a folder of runs loads at once and an aggregate table beside
    its per-row folders is not counted twice.  Rows a runner moved aside as damaged
    (``damaged/``, see :mod:`analysis.check`) are never read."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"results folder {str(root)!r} does not exist")
    if root.is_file():
        if root.name == TRIALS_FILE:
            return [root.parent]
        raise ResultsFormatError(f"{str(root)!r} is a file, expected a results folder")
    found = folders_holding(root, TRIALS_FILE)
    if not found:
        raise ResultsFormatError(f"no {TRIALS_FILE} found in folder {str(root)!r} or below it")
    # A table runner writes each row to runs/<problem>/<row>/ (with config.json and arrays.npz) and
    # gathers them into one trials.csv at the top: keep the innermost folders only, so no trial is
    # counted twice and the per-trial arrays stay reachable.
    return innermost(found)


def folders_holding(root: Path, *names: str) -> set[Path]:
    """The folders at or below ``root`` holding a file of one of ``names``, outside the damaged rows
    a runner moved aside (``root/damaged/``)."""
    return {p.parent for name in names for p in root.rglob(name)
            if p.is_file() and DAMAGED_DIR not in p.relative_to(root).parts[:-1]}


def innermost(folders) -> list[Path]:
    """The folders with no other of ``folders`` below them, sorted."""
    folders = set(folders)
    return sorted(d for d in folders if not any(o != d and d in o.parents for o in folders))


def load_config(results_dir: PathLike) -> dict:
    """The config.json of a results folder ({} if the folder has none)."""
    path = Path(results_dir) / CONFIG_FILE
    if not path.is_file():
        return {}
    with open(path) as f:
        return json.load(f)


def _to_bool(values: pd.Series, folder: Path) -> pd.Series:
    """Parse the diverged column ("True"/"False"/"1"/"0"/...) into bools."""
    text = values.astype(str).str.strip().str.lower()
    bad = ~text.isin(_TRUE | _FALSE)
    if bad.any():
        examples = sorted(set(values[bad].astype(str)))[:3]
        raise ResultsFormatError(
            f"column 'diverged' in {str(folder)!r} has non-boolean values {examples}"
        )
    return text.isin(_TRUE)


_NA_TOKENS = {"", "nan", "none", "null", "na", "n/a"}


def _parse_float(text: str) -> float:
    text = str(text).strip()
    return float("nan") if text.lower() in _NA_TOKENS else float(text)


def _to_float(values: pd.Series, column: str, folder: Path) -> pd.Series:
    """Parse a float column with Python's float ("nan", "inf" and "1e-3" all work);
    empty cells are NaN, anything else unparsable is an error naming the column."""
    try:
        return pd.Series([_parse_float(v) for v in values], index=values.index, dtype=float)
    except ValueError as err:
        raise ResultsFormatError(f"column {column!r} in {str(folder)!r} is not numeric: {err}") from err


def _maybe_numeric(values: pd.Series) -> pd.Series:
    """Extra columns: floats if every cell parses, else the strings unchanged."""
    try:
        parsed = pd.Series([_parse_float(v) for v in values], index=values.index, dtype=float)
    except ValueError:
        return values
    whole = parsed.dropna()
    return parsed.astype("int64") if len(whole) == len(parsed) and (whole % 1 == 0).all() else parsed


def _require_whole_rows(path: Path, folder: Path) -> None:
    """A file cut short ends mid-row: pandas pads the row's missing fields with empty text, so
    count them (every row has the header's fields) and require the final line break."""
    with open(path, newline="") as fh:
        rows = csv.reader(fh)
        header = next(rows, [])
        for number, row in enumerate(rows, start=2):
            if row and len(row) != len(header):
                raise ResultsFormatError(f"{TRIALS_FILE} in {str(folder)!r}: row {number} has {len(row)} of "
                                         f"{len(header)} fields (a truncated or damaged file)")
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)          # not empty: pandas has read a header
        last = fh.read(1)
        if last not in (b"\n", b"\r"):
            raise ResultsFormatError(f"{TRIALS_FILE} in {str(folder)!r} does not end with a line break "
                                     "(a truncated file)")


def read_trials(results_dir: PathLike) -> pd.DataFrame:
    """Read and type-check one folder's trials.csv.

    Every column is read as text first so that empty strings and names such as
    "None" survive, then the known numeric and boolean columns are parsed.
    A NaN/inf architecture PSNR always counts as diverged (the flag is OR-ed),
    so a diverged trial can never be silently dropped from the statistics.
    """
    folder = Path(results_dir)
    path = folder / TRIALS_FILE
    if not path.is_file():
        raise ResultsFormatError(f"no {TRIALS_FILE} in results folder {str(folder)!r}")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError as err:
        raise ResultsFormatError(f"{TRIALS_FILE} in {str(folder)!r} is empty (no trials)") from err
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ResultsFormatError(f"{TRIALS_FILE} in {str(folder)!r} cannot be parsed "
                                 f"(truncated or damaged?): {str(err).splitlines()[0]}") from err
    _require_whole_rows(path, folder)
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise ResultsFormatError(
            f"{TRIALS_FILE} in {str(folder)!r} is missing column(s) {', '.join(missing)}"
        )
    if len(raw) == 0:
        raise ResultsFormatError(f"{TRIALS_FILE} in {str(folder)!r} has no trials (0 rows)")
    dupes = raw["trial_id"][raw["trial_id"].duplicated()].unique().tolist()
    if dupes:
        raise ResultsFormatError(f"duplicate trial_id(s) {dupes[:3]} in {str(folder)!r}")

    df = raw.copy()
    for column in raw.columns:
        if column in STRING_COLUMNS:
            continue
        if column in FLOAT_COLUMNS:
            df[column] = _to_float(raw[column], column, folder)
        elif column == "diverged":
            df[column] = _to_bool(raw[column], folder)
        elif column == "seed":
            seeds = _to_float(raw[column], column, folder)
            whole = np.isfinite(seeds).all() and (seeds % 1 == 0).all()
            df[column] = seeds.astype("int64") if whole else seeds
        else:
            df[column] = _maybe_numeric(raw[column])
    df["diverged"] = df["diverged"] | ~np.isfinite(df["arch_psnr"].to_numpy())
    return df


def row_problem(folder) -> str | None:
    """What makes a finished row untrustworthy, in a few words naming the file; None if nothing."""
    return verify_row(folder)[0]


def verify_row(folder) -> tuple[str | None, pd.DataFrame | None]:
    """(:func:`row_problem`, the row's trials as :func:`read_trials` parses them when it has none):
    one read of the folder for the check and for the caller that goes on to use the trials."""
    folder = Path(folder)
    problem = manifest_problem(folder)
    if problem:
        return problem, None
    manifest = read_manifest(folder)
    try:
        trials = read_trials(folder)
    except ResultsFormatError as err:
        return str(err).replace(f" in {str(folder)!r}", ""), None
    n = len(trials)
    config = {}
    if (folder / CONFIG_FILE).is_file():
        try:
            config = json.loads((folder / CONFIG_FILE).read_text())
        except (ValueError, UnicodeDecodeError):
            return f"{CONFIG_FILE} is not valid JSON", None
    measured = config.get("measured") if isinstance(config, dict) else None
    expected, source = ((manifest["trials"], MANIFEST_FILE) if manifest is not None else
                        (measured.get("trials"), CONFIG_FILE) if isinstance(measured, dict) else (None, None))
    if expected is not None and n != expected:
        return f"{TRIALS_FILE} has {n} trials, {source} says {expected}", None
    if manifest is None and (folder / ARRAYS_FILE).is_file():
        try:                                   # no checksum to compare: read every array (zip CRCs)
            with np.load(folder / ARRAYS_FILE, allow_pickle=False) as npz:
                for key in npz.files:
                    npz[key]
        except Exception as err:               # BadZipFile, EOFError, ValueError, zlib.error, ...
            return (f"{ARRAYS_FILE} cannot be read ({type(err).__name__}: "
                    f"{str(err).splitlines()[0] if str(err) else ''})"), None
    return None, trials


def require_intact(folder) -> pd.DataFrame:
    """The trials of the finished row ``folder`` (:func:`read_trials`); ResultsFormatError naming
    the file if the row is damaged."""
    problem, trials = verify_row(folder)
    if problem:
        raise ResultsFormatError(f"results folder {str(folder)!r} is damaged: {problem} "
                                 f"(`python -m analysis check` lists its rows; rerunning its runner recomputes them)")
    return trials


def load_results_dir(results_dir: PathLike) -> pd.DataFrame:
    """One results folder as a DataFrame, with `results_dir` (absolute path) and
    `local_trial_id` (the trial_id as written in the folder, for load_arrays)."""
    folder = Path(results_dir)
    df = require_intact(folder)
    df["results_dir"] = str(folder.resolve())
    df["local_trial_id"] = df["trial_id"]
    return df


def _as_paths(paths) -> list:
    if isinstance(paths, (str, os.PathLike)):
        return [paths]
    return list(paths)


def _disambiguate(df: pd.DataFrame) -> pd.DataFrame:
    """Make trial_id unique across folders: colliding ids get "{folder}::{id}"."""
    collide = df["trial_id"].duplicated(keep=False)
    if not collide.any():
        return df
    dirs = df["results_dir"].unique().tolist()
    common = os.path.commonpath(dirs) if len(dirs) > 1 else os.path.dirname(dirs[0])
    short = {}
    for d in dirs:
        rel = os.path.relpath(d, common)
        short[d] = os.path.basename(d) if rel == "." else rel
    df = df.copy()
    df.loc[collide, "trial_id"] = [
        f"{short[d]}::{t}" for d, t in zip(df.loc[collide, "results_dir"], df.loc[collide, "local_trial_id"])
    ]
    return df


def load_results(*paths: Union[PathLike, Iterable[PathLike]]) -> pd.DataFrame:
    """Load one or many results folders (or folders holding them) into one tidy DataFrame.

    Each trial is a row; unknown extra columns are kept. Rows of several folders
    are concatenated; trial_ids that collide across folders are prefixed with the
    folder ("runA::table1/blur/..."), the original stays in `local_trial_id`.
    """
    flat = [p for item in paths for p in _as_paths(item)]
    if not flat:
        raise ValueError("load_results needs at least one results folder")
    dirs: list[Path] = []
    for p in flat:
        for d in find_results_dirs(p):
            if d.resolve() not in [x.resolve() for x in dirs]:
                dirs.append(d)
    frames = [load_results_dir(d) for d in dirs]
    df = pd.concat(frames, ignore_index=True, sort=False)
    return _disambiguate(df)


def load_arrays(results_dir: PathLike, trial_id: str) -> dict[str, np.ndarray]:
    """Arrays of one trial from `arrays.npz`, as {name: array}
    (e.g. "alpha_history": epochs × layers × ops; "search_val_loss": epochs).

    `trial_id` is the id as written in that folder (column `local_trial_id`).
    """
    path = Path(results_dir) / ARRAYS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {ARRAYS_FILE} in results folder {str(results_dir)!r}")
    prefix = f"{trial_id}/"
    with np.load(path, allow_pickle=False) as npz:
        out = {key[len(prefix):]: npz[key] for key in npz.files if key.startswith(prefix)}
    if not out:
        raise KeyError(f"no arrays for trial {trial_id!r} in {str(path)!r}")
    return out


def trial_row(df: pd.DataFrame, trial_id: str) -> pd.Series:
    """The row of `trial_id` in a loaded DataFrame (KeyError if absent or ambiguous)."""
    rows = df[df["trial_id"] == trial_id]
    if len(rows) != 1:
        raise KeyError(f"trial_id {trial_id!r} matches {len(rows)} rows (expected 1)")
    return rows.iloc[0]


def trial_arrays(df: pd.DataFrame, trial_id: str) -> dict[str, np.ndarray]:
    """load_arrays for a trial of a loaded DataFrame, found by its (unique) trial_id."""
    row = trial_row(df, trial_id)
    local = row["local_trial_id"] if "local_trial_id" in row.index else trial_id
    return load_arrays(row["results_dir"], local)
