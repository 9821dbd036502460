"""Correlation of one-shot (supernet) PSNR with architecture (retrained) PSNR.

DAS assumes that a better one-shot validation means a better final
architecture; the paper shows how loosely the two are correlated (Figs. 3, 5-10).
This module measures that with Pearson r, Spearman ρ and Kendall τ (with
p-values) and a least-squares line, optionally after removing the degenerate
trials of the paper's Appendix A.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats as sps

from .labels import sort_frame
from .stats import group_keys

X, Y = "one_shot_psnr", "arch_psnr"
DEGENERATE_FILTERS = ("none", "search", "all")
DEFAULT_THRESHOLD = 9.0
CORRELATION_GROUPS = ("problem", "op_set", "method", "hparams")
RESULT_KEYS = (
    "n", "n_excluded", "pearson_r", "pearson_p", "spearman_rho", "spearman_p",
    "kendall_tau", "kendall_p", "slope", "intercept",
)


def degenerate_mask(df: pd.DataFrame, mode: str = "none", threshold: float = DEFAULT_THRESHOLD,
                    x: str = X, y: str = Y) -> pd.Series:
    """True for the trials a degenerate filter removes (App. A, register #27).

    "none": nothing. "search": one-shot PSNR < threshold. "all": one-shot OR
    architecture PSNR < threshold. NaN values are never "< threshold", so a
    diverged trial is not removed here: it is excluded (and counted) by correlate.
    """
    if mode not in DEGENERATE_FILTERS:
        raise ValueError(f"degenerate filter must be one of {DEGENERATE_FILTERS}, got {mode!r}")
    low_x = df[x].to_numpy(dtype=float) < threshold
    low_y = df[y].to_numpy(dtype=float) < threshold
    mask = {"none": np.zeros(len(df), bool), "search": low_x, "all": low_x | low_y}[mode]
    return pd.Series(mask, index=df.index)


def filter_degenerate(df: pd.DataFrame, mode: str = "none", threshold: float = DEFAULT_THRESHOLD,
                      x: str = X, y: str = Y) -> pd.DataFrame:
    """`df` without the trials the degenerate filter `mode` removes (see degenerate_mask)."""
    return df[~degenerate_mask(df, mode, threshold, x, y)]


def _nan_result(n: int, n_excluded: int) -> dict[str, float]:
    return {"n": n, "n_excluded": n_excluded,
            **{k: float("nan") for k in RESULT_KEYS if k not in ("n", "n_excluded")}}


def correlate(x: ArrayLike, y: ArrayLike) -> dict[str, float]:
    """Pearson r, Spearman ρ, Kendall τ (τ-b) with two-sided p-values, and the
    least-squares line y = slope * x + intercept, over the pairs where both are finite.

    n = pairs used, n_excluded = pairs dropped for a NaN/inf value. Fewer than
    3 pairs, or a constant x or y, give NaN coefficients (they are undefined).
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length ({x.size} vs {y.size})")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n, n_excluded = int(ok.sum()), int((~ok).sum())
    if n < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        out = _nan_result(n, n_excluded)
        if n >= 2 and not np.all(x == x[0]):  # a line is still defined
            out["slope"], out["intercept"] = (float(v) for v in np.polyfit(x, y, 1))
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pearson = sps.pearsonr(x, y)
        spearman = sps.spearmanr(x, y)
        kendall = sps.kendalltau(x, y)
        line = sps.linregress(x, y)
    return {
        "n": n, "n_excluded": n_excluded,
        "pearson_r": float(pearson.statistic), "pearson_p": float(pearson.pvalue),
        "spearman_rho": float(spearman.statistic), "spearman_p": float(spearman.pvalue),
        "kendall_tau": float(kendall.statistic), "kendall_p": float(kendall.pvalue),
        "slope": float(line.slope), "intercept": float(line.intercept),
    }


def has_one_shot(df: pd.DataFrame, x: str = X) -> pd.Series:
    """Per row: True when the trial has a finite one-shot PSNR (DAS-like methods)."""
    return pd.Series(np.isfinite(df[x].to_numpy(dtype=float)), index=df.index)


def correlation_table(
    df: pd.DataFrame,
    by: Sequence[str] = CORRELATION_GROUPS,
    filters: Sequence[str] = DEGENERATE_FILTERS,
    threshold: float = DEFAULT_THRESHOLD,
    x: str = X,
    y: str = Y,
) -> pd.DataFrame:
    """Correlation per group and degenerate filter, one row each.

    Only groups with at least one finite one-shot PSNR are reported (methods
    without a supernet have nothing to correlate). Columns: the `by` keys,
    filter, threshold, n_total (trials in the group), n_removed (by the
    degenerate filter), n (pairs used), n_excluded (NaN/inf pairs) and the
    coefficients of `correlate`.
    """
    keys = group_keys(df, by)
    rows = []
    groups = df.groupby(keys, sort=False, dropna=False) if keys else [((), df)]
    for key, group in groups:
        if not has_one_shot(group, x).any():
            continue
        key = key if isinstance(key, tuple) else (key,)
        for mode in filters:
            removed = degenerate_mask(group, mode, threshold, x, y)
            kept = group[~removed]
            rows.append({**dict(zip(keys, key)), "filter": mode, "threshold": threshold,
                         "n_total": len(group), "n_removed": int(removed.sum()),
                         **correlate(kept[x], kept[y])})
    columns = keys + ["filter", "threshold", "n_total", "n_removed", *RESULT_KEYS]
    out = pd.DataFrame(rows, columns=columns)
    return sort_frame(out, keys).reset_index(drop=True)  # stable: filters keep their order
