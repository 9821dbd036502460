"""Summary statistics over many trials, and comparisons between methods.

The paper's point is that one DAS run says little: judge a method by the
distribution of many trials. So every summary reports max, mean, median, min
and std over the finite values, the trial count, how many trials diverged
(NaN PSNR: excluded from the numbers but always counted), and seeded bootstrap
confidence intervals for the median and the mean.
"""

from __future__ import annotations

import inspect
import warnings
from itertools import combinations
from typing import Callable, Sequence, Union

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats as sps

from .labels import sort_frame, sort_values

GROUP_COLUMNS = ("problem", "op_set", "method", "hparams")
# Columns that identify a population of trials; a statistic must not silently pool several values.
IDENTITY_COLUMNS = ("experiment", "space", "problem", "op_set", "method", "hparams")
STATS = ("max", "mean", "median", "min", "std")

Statistic = Union[str, Callable]
_STATISTICS = {"median": np.median, "mean": np.mean}
# scipy >= 1.15 takes `rng`; older versions only `random_state` (same resamples either way).
_BOOTSTRAP_RNG = "rng" if "rng" in inspect.signature(sps.bootstrap).parameters else "random_state"


def finite(values: ArrayLike) -> np.ndarray:
    """The finite entries of `values` as a float array (drops NaN and ±inf)."""
    x = np.asarray(values, dtype=float).ravel()
    return x[np.isfinite(x)]


def describe(values: ArrayLike, ddof: int = 0) -> dict[str, float]:
    """max, mean, median, min, std (with `ddof`; default 0 = numpy's population std,
    register #29) over the finite values, and n_finite. NaNs when none is finite;
    std is NaN when n_finite <= ddof."""
    x = finite(values)
    out = {"n_finite": int(x.size)}
    if x.size == 0:
        return {**out, **{s: float("nan") for s in STATS}}
    out.update(max=float(x.max()), mean=float(x.mean()), median=float(np.median(x)), min=float(x.min()))
    out["std"] = float(x.std(ddof=ddof)) if x.size > ddof else float("nan")
    return out


def bootstrap_ci(
    values: ArrayLike,
    statistic: Statistic = "median",
    n_resamples: int = 9999,
    confidence_level: float = 0.95,
    seed: int = 0,
    method: str = "percentile",
) -> tuple[float, float]:
    """Seeded bootstrap confidence interval of `statistic` over the finite values.

    `statistic` is "median", "mean" or a callable f(sample, axis). Uses
    scipy.stats.bootstrap (vectorized, rng seeded with `seed`). The default method is "percentile" because BCa
    is unreliable for the median of small samples with ties. Returns (NaN, NaN)
    when fewer than 2 finite values exist (no interval can be estimated).
    """
    if callable(statistic):
        fn = statistic
    elif statistic in _STATISTICS:
        fn = _STATISTICS[statistic]
    else:
        raise ValueError(f"unknown statistic {statistic!r}; use 'median', 'mean' or a callable")
    x = finite(values)
    if x.size < 2:
        return float("nan"), float("nan")
    if np.all(x == x[0]):  # every resample is identical: the interval is a point
        return float(x[0]), float(x[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = sps.bootstrap(
            (x,), lambda s, axis=-1: fn(s, axis=axis), n_resamples=n_resamples,
            confidence_level=confidence_level, method=method, vectorized=True,
            **{_BOOTSTRAP_RNG: np.random.default_rng(seed)},
        )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def finite_counts(df: pd.DataFrame, by: Sequence[str], value: str = "arch_psnr") -> pd.Series:
    """The finite ``value`` entries per group of ``by`` (the columns of it that exist)."""
    return df.groupby(group_keys(df, by))[value].apply(lambda v: int(finite(v).size))


def group_keys(df: pd.DataFrame, by: Sequence[str]) -> list[str]:
    """The columns of `by` that exist in `df` (a missing hparams column is not an error)."""
    return [c for c in by if c in df.columns]


def pooled_columns(df: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """The identity columns (experiment, space, problem, op set, method, hparams) not in
    `keys` that take several values inside some group of `keys`: grouping by `keys`
    alone would pool different populations of trials there."""
    keys = [c for c in keys if c in df.columns]
    others = [c for c in IDENTITY_COLUMNS if c in df.columns and c not in keys]
    if not others or len(df) == 0:
        return []
    if not keys:
        return [c for c in others if df[c].nunique(dropna=False) > 1]
    counts = df.groupby(keys, dropna=False)[others].nunique(dropna=False)
    return [c for c in others if (counts[c] > 1).any()]


def summarize(
    df: pd.DataFrame,
    by: Sequence[str] = GROUP_COLUMNS,
    value: str = "arch_psnr",
    ddof: int = 0,
    ci: bool = True,
    n_resamples: int = 9999,
    confidence_level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Per-group statistics of `value`, one row per group, in the paper's order.

    Columns: the `by` keys, n (trials), n_diverged, n_finite, max, mean, median,
    min, std (ddof as given, default 0), and if `ci` the bootstrap intervals
    median_ci_low/high and mean_ci_low/high (each group bootstrapped with the
    same `seed`, so a group's CI does not depend on which other groups exist).
    """
    keys = group_keys(df, by)
    rows = []
    for key, group in df.groupby(keys, sort=False, dropna=False) if keys else [((), df)]:
        key = key if isinstance(key, tuple) else (key,)
        values = group[value].to_numpy(dtype=float)
        diverged = group["diverged"].to_numpy(dtype=bool) if "diverged" in group else ~np.isfinite(values)
        row = dict(zip(keys, key))
        row.update(n=len(group), n_diverged=int(diverged.sum()))
        row.update(describe(values, ddof=ddof))
        if ci:
            for stat in ("median", "mean"):
                low, high = bootstrap_ci(values, stat, n_resamples, confidence_level, seed)
                row[f"{stat}_ci_low"], row[f"{stat}_ci_high"] = low, high
        rows.append(row)
    columns = keys + ["n", "n_diverged", "n_finite", *STATS]
    if ci:
        columns += ["median_ci_low", "median_ci_high", "mean_ci_low", "mean_ci_high"]
    out = pd.DataFrame(rows, columns=columns)
    return sort_frame(out, keys).reset_index(drop=True)


def mann_whitney(a: ArrayLike, b: ArrayLike) -> dict[str, float]:
    """Two-sided Mann–Whitney U test of a vs b over the finite values, with effect sizes.

    u: scipy's U statistic of `a`; prob_a_beats_b = U / (n_a n_b)
    = P(A > B) + 0.5 P(A = B) for a random trial of each; rank_biserial
    = 2 * prob_a_beats_b - 1 (in [-1, 1], positive when A tends to be larger).
    All NaN when either side has no finite value.
    """
    x, y = finite(a), finite(b)
    out = {"n_a": int(x.size), "n_b": int(y.size)}
    if x.size == 0 or y.size == 0:
        return {**out, "u": float("nan"), "p_value": float("nan"),
                "prob_a_beats_b": float("nan"), "rank_biserial": float("nan")}
    res = sps.mannwhitneyu(x, y, alternative="two-sided")
    prob = float(res.statistic) / (x.size * y.size)
    return {**out, "u": float(res.statistic), "p_value": float(res.pvalue),
            "prob_a_beats_b": prob, "rank_biserial": 2.0 * prob - 1.0}


def compare(
    df: pd.DataFrame,
    a: str,
    b: str,
    between: str = "method",
    within: Sequence[str] = ("problem", "op_set", "hparams"),
    value: str = "arch_psnr",
) -> pd.DataFrame:
    """Mann–Whitney comparison of `between == a` vs `between == b` inside each
    `within` group where both exist (e.g. DAS vs Random Search per problem and op set)."""
    return _comparisons(df, between, within, value, pairs=lambda present: [(a, b)] if {a, b} <= set(present) else [])


def compare_all(
    df: pd.DataFrame,
    between: str = "method",
    within: Sequence[str] = ("problem", "op_set", "hparams"),
    value: str = "arch_psnr",
    reference: str | None = None,
) -> pd.DataFrame:
    """Comparisons inside each `within` group: `reference` (e.g. "DAS") against every
    other value of `between`, or every pair (in the paper's order) when reference is None."""
    def pairs(present):
        if reference is None:
            return list(combinations(present, 2))
        return [(reference, other) for other in present if other != reference] if reference in present else []

    return _comparisons(df, between, within, value, pairs)


def _comparisons(df, between, within, value, pairs) -> pd.DataFrame:
    keys = group_keys(df, [c for c in within if c != between])
    rows = []
    groups = df.groupby(keys, sort=False, dropna=False) if keys else [((), df)]
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        present = sort_values(between, group[between].tolist())
        for a, b in pairs(present):
            res = mann_whitney(group.loc[group[between] == a, value], group.loc[group[between] == b, value])
            rows.append({**dict(zip(keys, key)), "a": a, "b": b, **res})
    columns = keys + ["a", "b", "n_a", "n_b", "u", "p_value", "prob_a_beats_b", "rank_biserial"]
    out = pd.DataFrame(rows, columns=columns)
    return sort_frame(out, keys).reset_index(drop=True)
