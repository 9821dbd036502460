"""Curvature of the architecture loss (RobustDARTS): does lambda_max predict the architecture?

Works on results of curvature-tracked searches (``curvature_every > 0``, e.g.
``experiments/run_curvature.py``).  Their trials.csv rows carry ``lambda_max_final`` (the dominant
eigenvalue of the alpha Hessian of L_val at the returned search state), ``stop_epoch``,
``early_stopped``, ``n_rollbacks``, ``theta_wd_final`` and ``search_epochs``; arrays.npz holds the
per-epoch ``lambda_max`` of every epoch the trial trained (rolled-back ones included, NaN where no
estimate was made or the trial had finished) and ``search_epoch`` (the epoch of the trial's path
that call trained; DARTS-ADA moves it back on a rollback).

* :func:`lambda_trajectories`: those arrays as one long frame;
* :func:`trajectory_figure`: lambda_max against epochs trained, one line per trial, coloured by the
  trial's architecture PSNR;
* :func:`lambda_correlation_table`: Pearson / Spearman / Kendall of final lambda_max with PSNR;
* :func:`early_stop_summary`: how often the rule fired, when, and the final weight decays.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from .correlation import correlation_table
from .labels import label, sort_frame
from .load import trial_arrays

LAMBDA = "lambda_max_final"
GROUPS = ("problem", "op_set", "method")
CURVATURE_COLUMNS = (LAMBDA, "stop_epoch", "early_stopped", "n_rollbacks", "theta_wd_final", "search_epochs")


def has_curvature(df: pd.DataFrame) -> pd.Series:
    """Per row: the trial was searched with lambda_max tracking (it has a stop_epoch; its final
    lambda_max may still be NaN, e.g. when it diverged)."""
    if LAMBDA not in df.columns or "stop_epoch" not in df.columns:
        return pd.Series(False, index=df.index)
    return df["stop_epoch"].notna()


def _groups(df: pd.DataFrame, by: Sequence[str]) -> list[str]:
    return [c for c in by if c in df.columns]


def lambda_trajectories(df: pd.DataFrame) -> pd.DataFrame:
    """Long frame of the per-epoch lambda_max of every curvature-tracked trial of a loaded DataFrame
    (``analysis.load_results``): columns trial_id, call (0-based epoch call = epochs trained so far),
    search_epoch (the epoch of the trial's path; = call without early stopping), lambda_max."""
    rows = []
    for _, r in df[has_curvature(df)].iterrows():
        arrays = trial_arrays(df, r["trial_id"])
        if "lambda_max" not in arrays:
            continue
        lam = np.asarray(arrays["lambda_max"], float)
        calls = np.arange(len(lam))
        epoch = np.asarray(arrays.get("search_epoch", calls))
        rows.append(pd.DataFrame({"trial_id": r["trial_id"], "call": calls, "search_epoch": epoch,
                                  "lambda_max": lam}))
    if not rows:
        return pd.DataFrame(columns=["trial_id", "call", "search_epoch", "lambda_max"])
    return pd.concat(rows, ignore_index=True)


def trajectory_figure(df: pd.DataFrame, traj: pd.DataFrame | None = None, value: str = "arch_psnr",
                      by: Sequence[str] = GROUPS, log: bool = True, cmap: str = "viridis") -> Figure:
    """lambda_max against epochs trained: one panel per (problem, op set, method) group, one line per
    trial, coloured by ``value`` (architecture PSNR) on one colour scale shared by all panels.  A dot
    marks the estimate each trial's final architecture comes from (DARTS-ES: the epoch before the
    growth).  ``log``: logarithmic lambda axis (non-positive values are left out of the line)."""
    data = df[has_curvature(df)]
    if len(data) == 0:
        raise ValueError("trajectory_figure: no trial has lambda_max (search with curvature_every > 0)")
    traj = lambda_trajectories(data) if traj is None else traj
    keys = _groups(data, by)
    groups = [tuple(g) for g in sort_frame(data[keys].drop_duplicates(), keys).to_numpy()]
    vals = data[value].to_numpy(float)
    finite = vals[np.isfinite(vals)]
    norm = Normalize(*(np.percentile(finite, [2, 98]) if len(finite) else (0, 1)))
    colors = colormaps[cmap]
    ncol = min(3, len(groups))
    nrow = -(-len(groups) // ncol)
    fig = Figure(figsize=(4.6 * ncol + 0.8, 3.4 * nrow), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
    by_trial = {t: g for t, g in traj.groupby("trial_id", sort=False)}
    for ax, g in zip(axes, groups):
        rows = data[(data[keys] == list(g)).all(axis=1)]
        for _, r in rows.iterrows():
            t = by_trial.get(r["trial_id"])
            if t is None:
                continue
            x, y = t["call"].to_numpy() + 1, t["lambda_max"].to_numpy(float)
            ok = np.isfinite(y) & ((y > 0) if log else True)
            c = colors(norm(r[value])) if np.isfinite(r[value]) else "#999999"
            ax.plot(x[ok], y[ok], color=c, lw=0.9, alpha=0.85)
            stop = r.get("stop_epoch", np.nan)
            if np.isfinite(stop):
                hit = ok & (t["search_epoch"].to_numpy() == int(stop))
                if hit.any():
                    i = np.flatnonzero(hit)[-1]
                    ax.plot(x[i], y[i], "o", ms=3.5, color=c, mec="k", mew=0.4)
        if log and ax.has_data():
            ax.set_yscale("log")
        ax.set_title(", ".join(label(c, v) for c, v in zip(keys, g)) + f" (n={len(rows)})", fontsize=9)
        ax.set_xlabel("epochs trained")
        ax.set_ylabel(r"$\lambda_{max}$ of $\nabla^2_\alpha L_{val}$")
        ax.grid(alpha=0.3)
    for ax in axes[len(groups):]:
        ax.set_visible(False)
    sm = ScalarMappable(norm=norm, cmap=colors)
    fig.colorbar(sm, ax=list(axes[:len(groups)]), label="architecture PSNR [dB]" if value == "arch_psnr" else value)
    return fig


def lambda_correlation_table(df: pd.DataFrame, by: Sequence[str] = GROUPS + ("hparams",),
                             y: str = "arch_psnr") -> pd.DataFrame:
    """Pearson r, Spearman rho and Kendall tau (with p-values) of final lambda_max with ``y``
    (architecture PSNR; "one_shot_psnr" works too) per group, over the trials where both are finite."""
    if LAMBDA not in df.columns:
        raise ValueError(f"no column {LAMBDA!r}: these results were searched without lambda_max tracking")
    out = correlation_table(df, by=_groups(df, by), filters=("none",), x=LAMBDA, y=y)
    return out.drop(columns=["filter", "threshold", "n_removed"])


def early_stop_summary(df: pd.DataFrame, by: Sequence[str] = GROUPS + ("hparams",)) -> pd.DataFrame:
    """Per group: trials, how many the rule stopped (DARTS-ES) or rolled back (DARTS-ADA), the median
    stop epoch of the stopped ones, rollbacks (mean / max), the median final theta weight decay and
    epochs trained, and the median / worst architecture PSNR."""
    data = df[has_curvature(df)]
    keys = _groups(data, by)
    rows = []
    for g, sub in data.groupby(keys, sort=False, dropna=False):
        g = g if isinstance(g, tuple) else (g,)
        stopped = sub["early_stopped"].fillna(0).astype(bool) if "early_stopped" in sub else \
            pd.Series(False, index=sub.index)
        rb = sub["n_rollbacks"].to_numpy(float) if "n_rollbacks" in sub else np.zeros(len(sub))
        psnr = sub["arch_psnr"].to_numpy(float)
        rows.append({**dict(zip(keys, g)), "n": len(sub), "n_stopped": int(stopped.sum()),
                     "median_stop_epoch": float(np.nanmedian(sub.loc[stopped, "stop_epoch"]))
                     if stopped.any() else float("nan"),
                     "n_rolled_back": int((rb > 0).sum()), "mean_rollbacks": float(np.mean(rb)),
                     "max_rollbacks": int(np.max(rb)) if len(rb) else 0,
                     "median_theta_wd_final": float(np.nanmedian(sub["theta_wd_final"]))
                     if "theta_wd_final" in sub else float("nan"),
                     "median_search_epochs": float(np.nanmedian(sub["search_epochs"]))
                     if "search_epochs" in sub else float("nan"),
                     "median_lambda_max_final": float(np.nanmedian(sub[LAMBDA])) if np.isfinite(sub[LAMBDA]).any()
                     else float("nan"),
                     "median_arch_psnr": float(np.nanmedian(psnr)) if np.isfinite(psnr).any() else float("nan"),
                     "min_arch_psnr": float(np.nanmin(psnr)) if np.isfinite(psnr).any() else float("nan")})
    out = pd.DataFrame(rows)
    return sort_frame(out, keys).reset_index(drop=True) if len(out) else out


__all__ = ["CURVATURE_COLUMNS", "LAMBDA", "early_stop_summary", "has_curvature", "lambda_correlation_table",
           "lambda_trajectories", "trajectory_figure"]
