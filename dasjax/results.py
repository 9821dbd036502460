"""Per-trial records and results folders (the contract with ``analysis/``).

A results folder holds ``trials.csv`` (one tidy row per trial), ``config.json`` (the full
config that produced it) and ``arrays.npz`` (per-trial curves keyed ``"{trial_id}/{name}"``).
Every file is written to a temporary name and renamed, so a killed process never leaves
a half-written file, and ``manifest.json`` (sizes and checksums) is written last, so a file
damaged afterwards is named instead of read (:mod:`analysis.files`, :mod:`analysis.check`).
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.files import MANIFEST_FILE, atomic_write_bytes, atomic_write_text, write_manifest

from .operations import op_metadata

if TYPE_CHECKING:
    from .config import Config
    from .stages import MethodResult, PathLike

COLUMNS = ["trial_id", "experiment", "space", "problem", "op_set", "method", "hparams", "seed",
           "one_shot_psnr", "arch_psnr", "architecture", "alpha_softmax", "ops", "op_meta", "diverged", "wall_time_s"]


def dataset_label(cfg) -> str | None:
    """Where an image problem's data came from ("BSDS300", or the embedded images, NOT BSDS300);
    None for the 1D problems (their data is generated)."""
    if not cfg.problem.is_image:
        return None
    from .bsds import resolve_source
    return resolve_source(cfg.problem.data_dir).label


def method_records(result: MethodResult, *, experiment: str, cfg: Config) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Rows and arrays of a :class:`dasjax.api.MethodResult`; per-trial wall time = row wall / T.
    Image problems get one more column, ``dataset`` (see :func:`dataset_label`).  The result's extra
    ``columns`` (curvature runs: lambda_max_final, stop_epoch, ...) follow COLUMNS."""
    T = len(result.seeds)
    rows, arrays = [], {}
    ops = list(cfg.space.edge_ops)       # alpha's columns (the cell space adds 'zero')
    # each op's label, colour and zero preservation, for the analysis (which never imports dasjax)
    op_meta = json.dumps(op_metadata(ops), sort_keys=True)
    dataset = dataset_label(cfg)
    for i in range(T):
        hp = result.hparams[i]
        tid = f"{experiment}/{cfg.problem.name}/{cfg.space.op_set_name}/{result.method}/{hp}/s{int(result.seeds[i])}"
        alpha = "" if result.alpha_softmax is None else json.dumps(
            np.round(np.asarray(result.alpha_softmax[i], dtype=float), 6).tolist())
        rows.append({
            "trial_id": tid, "experiment": experiment, "space": cfg.space.space,
            "problem": cfg.problem.name, "op_set": cfg.space.op_set_name, "method": result.method,
            "hparams": hp, "seed": int(result.seeds[i]),
            "one_shot_psnr": float(result.one_shot_psnr[i]), "arch_psnr": float(result.arch_psnr[i]),
            "architecture": result.arch_strings[i], "alpha_softmax": alpha, "ops": json.dumps(ops),
            "op_meta": op_meta,
            "diverged": bool(result.diverged[i]), "wall_time_s": float(result.wall_time_s) / T,
        })
        if dataset is not None:
            rows[-1]["dataset"] = dataset
        for name, col in getattr(result, "columns", {}).items():   # e.g. lambda_max_final, stop_epoch
            v = np.asarray(col)[i]
            rows[-1][name] = (str(v) if v.dtype.kind in "USO" else
                              int(v) if np.issubdtype(v.dtype, np.integer) else float(v))
        for name, arr in result.arrays.items():
            arrays[f"{tid}/{name}"] = np.asarray(arr[i])
    return rows, arrays


def trials_frame(rows: list[dict]) -> pd.DataFrame:
    """Records of :func:`method_records` as a trials.csv table: COLUMNS first, then the extra ones."""
    return pd.DataFrame(rows, columns=COLUMNS + [c for c in (rows[0] if rows else {}) if c not in COLUMNS])


def save_results(out_dir: PathLike, rows: list[dict], config: dict,
                 arrays: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Write trials.csv, config.json and arrays.npz into ``out_dir`` (atomically each), then
    manifest.json.  An earlier manifest and trials.csv go first, so a write stopped half-way
    leaves a folder that reads as unfinished, never one that mixes two runs' files."""
    out = Path(out_dir)
    df = trials_frame(rows)
    for stale in (MANIFEST_FILE, "trials.csv", "arrays.npz"):
        (out / stale).unlink(missing_ok=True)
    atomic_write_text(out / "config.json", json.dumps(config, indent=2, sort_keys=True, default=str))
    names = ["config.json", "trials.csv"]
    if arrays:
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write_bytes(out / "arrays.npz", buf.getvalue())
        names.append("arrays.npz")
    atomic_write_text(out / "trials.csv", df.to_csv(index=False))
    write_manifest(out, names, trials=len(df))
    return df


def load_results(*folders: PathLike) -> pd.DataFrame:
    """Every trial of one or more results folders (or folders holding them) as one DataFrame, each
    row checked against its manifest first: :func:`analysis.load_results`, imported when called,
    so ``import dasjax`` does not load the analysis."""
    from analysis.load import load_results as load
    return load(*folders)
