"""How many trials are enough: power analysis on the trials a study already has.

A study's trials (the *pilot*) are resampled with replacement to the trial counts a larger or
smaller study would have, and the statistic or the test is computed on each resample:

- :func:`ci_half_width` / :func:`trials_needed`: the half-width of the 95 % interval of a row's
  median (or mean) at n trials, and the fewest trials that bring it under a target;
- :func:`power_curve`: the power of the findings' rank test (two-sided Mann-Whitney U, the
  direction included) between two rows, as a function of the trials per row;
  :func:`power_curves` for the comparisons of a study (DAS against every other row);
- :func:`findings_power`: for each of the paper's Table 1 findings, the power at n trials per row
  (the share of resampled studies in which :func:`analysis.table1_findings` says "holds") and the
  trials per row needed for 80 % power at alpha = 0.05.

**Assumption:** the pilot's empirical distribution stands in for the population. That is the
bootstrap's assumption, and it fails for small pilots: a pilot of n trials has at most n distinct
values, so a rare collapse it did not draw is absent from every resample, and the resampled
median takes only a few values. Below :data:`MIN_PILOT` finite trials per row the estimates are
flagged (``small_pilot``) and a warning is issued. The threshold: with 10 trials the resampled
median lies between the pilot's 3rd and 8th smallest values in 96 % of resamples (simulated), so
the interval is set by about six observed values; with 5 trials, by three.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
import scipy.stats as sps

from .stats import finite, finite_counts, group_keys

MIN_PILOT = 10          # finite trials per row below which an estimate is flagged (see the docstring)
DEFAULT_GRID = (5, 8, 10, 15, 20, 25, 30, 40, 50, 60, 75, 100, 150, 200, 300, 400)
_STATISTICS = {"median": np.median, "mean": np.mean}


class SmallPilotWarning(UserWarning):
    """A power estimate rests on fewer than :data:`MIN_PILOT` trials per row."""


def _warn_small(name: str, n: int) -> bool:
    if n < MIN_PILOT:
        warnings.warn(f"{name}: the pilot has {n} finite trials (< {MIN_PILOT}); resampling it says little "
                      f"about larger studies (analysis.power.MIN_PILOT)", SmallPilotWarning, stacklevel=3)
        return True
    return False


def ci_half_width(values, n: int, statistic: str = "median", confidence_level: float = 0.95,
                  n_resamples: int = 2000, seed: int = 0) -> float:
    """Half-width of the central ``confidence_level`` interval of ``statistic`` over studies of ``n``
    trials drawn from ``values`` (the pilot): half the distance between the quantiles of the
    resampled statistic.  NaN without finite values."""
    if statistic not in _STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}; use 'median' or 'mean'")
    if int(n) < 1:
        raise ValueError(f"n={n} must be a positive integer")
    x = finite(values)
    if x.size == 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    stats = _STATISTICS[statistic](x[rng.integers(0, x.size, size=(n_resamples, int(n)))], axis=1)
    a = (1 - confidence_level) / 2
    lo, hi = np.quantile(stats, [a, 1 - a])
    return float(hi - lo) / 2


def trials_needed(df: pd.DataFrame, target: float, statistic: str = "median", value: str = "arch_psnr",
                  by: Sequence[str] = ("problem", "op_set", "method"), grid: Sequence[int] = DEFAULT_GRID,
                  confidence_level: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per row (``by``): the fewest trials in ``grid`` whose interval of ``statistic`` has a
    half-width <= ``target`` (dB), with the half-width now and at that count.  ``needed`` is NaN
    when even the largest count in the grid misses the target (``reached`` False)."""
    if not target > 0:
        raise ValueError(f"target={target} must be > 0 (dB)")
    by = group_keys(df, by)
    rows = []
    for key, sel in df.groupby(by, sort=False) if by else [((), df)]:
        key = key if isinstance(key, tuple) else (key,)
        x = finite(sel[value])
        name = " / ".join(map(str, key))
        small = _warn_small(name or "trials", x.size)
        now = ci_half_width(x, max(x.size, 1), statistic, confidence_level, n_resamples, seed) if x.size else np.nan
        needed, at = np.nan, np.nan
        for n in sorted(grid):
            w = ci_half_width(x, n, statistic, confidence_level, n_resamples, seed)
            if w <= target:
                needed, at = n, w
                break
        rows.append({**dict(zip(by, key)), "n_pilot": int(x.size),
                     "half_width_now": now, "target": float(target), "needed": needed, "half_width_at_needed": at,
                     "reached": bool(np.isfinite(needed)), "small_pilot": small})
    return pd.DataFrame(rows)


def power_curve(a: ArrayLike, b: ArrayLike, grid: Sequence[int] = DEFAULT_GRID, alpha: float = 0.05, n_resamples: int = 1000,
                seed: int = 0, strict: bool = True) -> pd.DataFrame:
    """Power of "row a beats row b" at n trials per row, for each n in ``grid``: the share of
    resampled pairs of studies whose medians are in a's favour (``>``, or ``>=`` with
    ``strict=False``) and whose two-sided Mann-Whitney U test gives p < ``alpha``, the verdict
    "holds" of :func:`analysis.table1_findings`.  Columns n, power, mc_se (its Monte-Carlo error)."""
    x, y = finite(a), finite(b)
    if x.size == 0 or y.size == 0:
        raise ValueError("power_curve needs finite values in both rows")
    rng = np.random.default_rng(seed)
    out = []
    for n in sorted(int(v) for v in grid):
        xa, yb = x[rng.integers(0, x.size, (n_resamples, n))], y[rng.integers(0, y.size, (n_resamples, n))]
        ma, mb = np.median(xa, axis=1), np.median(yb, axis=1)
        ahead = ma > mb if strict else ma >= mb
        hits = int(np.sum(ahead & (two_sided_p(xa, yb) < alpha)))
        p = hits / n_resamples
        out.append({"n": n, "power": p, "mc_se": float(np.sqrt(max(p * (1 - p), 1e-12) / n_resamples))})
    return pd.DataFrame(out)


def power_curves(df: pd.DataFrame, reference: str = "DAS", value: str = "arch_psnr",
                 grid: Sequence[int] = DEFAULT_GRID, target_power: float = 0.8, alpha: float = 0.05,
                 n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Power curves of the comparisons a study is about: within each (problem, op set), the row of
    method ``reference`` (else the row with the highest median) against every other row (a row: a
    method, and its hyperparameter set where several are present), in the direction the pilot
    shows (the higher median as "a").  One line per (comparison, n) with power and mc_se, plus
    ``needed``: the fewest trials in ``grid`` with power >= ``target_power`` (NaN: beyond it)."""
    row_keys = [c for c in group_keys(df, ("method", "hparams")) if df[c].nunique() > 1] or \
        group_keys(df, ("method",))
    out = []
    for (problem, op_set), sel in df.groupby(["problem", "op_set"], sort=False):
        rows = {}
        for key, part in sel.groupby(row_keys, sort=False):
            key = key if isinstance(key, tuple) else (key,)
            x = finite(part[value])
            if x.size:
                rows[" / ".join(map(str, key))] = (key, x)
        if len(rows) < 2:
            continue
        ref = next((name for name, (key, _) in rows.items() if reference in key), None) or \
            max(rows, key=lambda name: np.median(rows[name][1]))
        for name, (_, x) in rows.items():
            if name == ref:
                continue
            r = rows[ref][1]
            a, b = (ref, name) if np.median(r) >= np.median(x) else (name, ref)
            curve = power_curve(rows[a][1], rows[b][1], grid, alpha, n_resamples, seed)
            hit = curve.loc[curve["power"] >= target_power, "n"]
            curve = curve.assign(problem=problem, op_set=op_set, a=a, b=b, comparison=f"{a} > {b} ({op_set} ops)",
                                 n_a=rows[a][1].size, n_b=rows[b][1].size,
                                 needed=float(hit.iloc[0]) if len(hit) else np.nan,
                                 small_pilot=min(rows[a][1].size, rows[b][1].size) < MIN_PILOT)
            out.append(curve)
    columns = ["problem", "op_set", "comparison", "a", "b", "n_a", "n_b", "n", "power", "mc_se", "needed",
               "small_pilot"]
    return pd.concat(out, ignore_index=True)[columns] if out else pd.DataFrame(columns=columns)


def two_sided_p(xa: np.ndarray, yb: np.ndarray) -> np.ndarray:
    """The two-sided Mann-Whitney p of each row pair of xa (R, n) and yb (R, m), as
    :func:`analysis.stats.mann_whitney` computes it one pair at a time (scipy's "auto" method: exact
    for a pair with a side of at most 8 values and no ties, else the asymptotic normal), vectorized
    over the rows."""
    p = np.asarray(sps.mannwhitneyu(xa, yb, axis=1, alternative="two-sided", method="asymptotic").pvalue, float)
    if min(xa.shape[1], yb.shape[1]) <= 8:
        ordered = np.sort(np.concatenate([xa, yb], axis=1), axis=1)
        exact = np.flatnonzero(~(np.diff(ordered, axis=1) == 0).any(axis=1))
        if exact.size:
            p[exact] = sps.mannwhitneyu(xa[exact], yb[exact], axis=1, alternative="two-sided", method="exact").pvalue
    return p


def _resample_study(df: pd.DataFrame, n: int, rng, by=("problem", "op_set", "method")) -> pd.DataFrame:
    """Every row's trials drawn with replacement to ``n`` trials (whole trials: a trial's one-shot
    and architecture PSNR and its architecture stay together)."""
    parts = []
    for _, sel in df.groupby(list(by), sort=False):
        parts.append(sel.iloc[rng.integers(0, len(sel), n)])
    return pd.concat(parts, ignore_index=True)


def findings_power(df: pd.DataFrame, grid: Sequence[int] = (10, 25, 50, 75, 100, 150, 200, 300),
                   target_power: float = 0.8, alpha: float = 0.05, n_resamples: int = 200, seed: int = 0,
                   test_resamples: int = 199) -> pd.DataFrame:
    """For each (finding, problem) of :func:`analysis.table1_findings`: its power at every n in
    ``grid`` (trials per row; the share of ``n_resamples`` resampled studies in which the verdict
    is "holds") and ``needed``, the smallest n in the grid with power >= ``target_power`` (NaN:
    beyond the grid).  ``test_resamples``: the permutation / bootstrap resamples of findings 6-7
    inside each resampled study (fewer than the report's 9999, for speed)."""
    from .findings import table1_findings
    if "hparams" in df.columns and df["hparams"].nunique() > 1:
        raise ValueError("findings_power needs one hyperparameter set (as table1_findings)")
    counts = finite_counts(df, ("problem", "op_set", "method"))
    smallest = int(counts.min()) if len(counts) else 0
    small = _warn_small("findings_power", smallest)
    observed = table1_findings(df, alpha=alpha, n_resamples=test_resamples, seed=seed)
    keys = list(zip(observed["finding"], observed["problem"]))
    holds = {k: [] for k in keys}
    rng = np.random.default_rng(seed)
    for n in sorted(int(v) for v in grid):
        wins = dict.fromkeys(keys, 0)
        for _ in range(n_resamples):
            f = table1_findings(_resample_study(df, n, rng), alpha=alpha, n_resamples=test_resamples,
                                seed=int(rng.integers(2 ** 31)))
            for k, v in zip(zip(f["finding"], f["problem"]), f["verdict"]):
                wins[k] += v == "holds"
        for k in keys:
            holds[k].append(wins[k] / n_resamples)
    rows = []
    for (finding, problem), verdict in zip(keys, observed["verdict"]):
        powers = holds[(finding, problem)]
        needed = next((n for n, p in zip(sorted(grid), powers) if p >= target_power), np.nan)
        rows.append({"finding": finding, "problem": problem, "verdict_now": verdict, "n_pilot_min": smallest,
                     **{f"power_at_{n}": p for n, p in zip(sorted(grid), powers)},
                     "needed": needed, "small_pilot": small})
    return pd.DataFrame(rows)
