"""One-call report: tables, statistics, correlations, comparisons and figures.

`write_report(df, out_dir)` is what `python -m analysis` runs and what an
experiment runner can call after saving its results. It writes report.md
(markdown, with relative image links), the PNG figures, LaTeX tables and the
CSVs summary.csv, correlations.csv and comparisons.csv.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import pandas as pd

from .architecture import dead_state_summary, is_cell_architecture, parse_op_meta
from .correlation import (CORRELATION_GROUPS, DEFAULT_THRESHOLD, DEGENERATE_FILTERS, correlation_table,
                          has_one_shot)
from .files import atomic_write_text
from .figures import (alpha_trajectory_figure, architecture_figure, best_and_worst, cell_graph_figure,
                      distribution_figure, power_figure, save_figure, scatter_figure)
from .labels import label, sort_frame, sort_values
from .power import MIN_PILOT, SmallPilotWarning, power_curves, trials_needed
from .reference import reference_table
from .stats import GROUP_COLUMNS, compare_all, finite_counts, summarize
from .tables import MISSING, fmt, frame_to_markdown, integer_cells, results_table

BLOCK_COLUMNS = ("experiment", "space")
SUMMARY_CSV, CORRELATIONS_CSV, COMPARISONS_CSV = "summary.csv", "correlations.csv", "comparisons.csv"
REPORT_MD = "report.md"


def slug(text: str) -> str:
    """A file-name-safe version of `text` ("Random Search" -> "random-search")."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "x"


def varying(df: pd.DataFrame, columns: Sequence[str], within: Sequence[str]) -> list[str]:
    """The `columns` that take more than one value inside some `within` group."""
    if len(df) == 0:
        return []
    within = [c for c in within if c in df.columns]
    out = []
    for c in columns:
        if c not in df.columns:
            continue
        n = df.groupby(within, dropna=False)[c].nunique(dropna=False) if within else pd.Series([df[c].nunique()])
        if (n > 1).any():
            out.append(c)
    return out


def table_rows(block: pd.DataFrame) -> list[str]:
    """Table rows for a block: (op set, method), plus the hyperparameter set where a
    method has several (Table 3 style), so no cell pools different sets."""
    extra = varying(block, ["hparams"], ["problem", "op_set", "method"])
    return ["op_set", "method"] + extra


def _resolve_reference(reference) -> pd.DataFrame | None:
    if reference is None or isinstance(reference, pd.DataFrame):
        return reference
    return reference_table(str(reference))


def _ci_cell(value: float, low: float, high: float) -> str:
    if not np.isfinite(value):
        return MISSING
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def ci_markdown(summary: pd.DataFrame, keys: Sequence[str]) -> str:
    """Median and mean with their bootstrap CIs, trial and diverged counts, as markdown."""
    view = pd.DataFrame({k: summary[k].map(lambda v, k=k: label(k, v)) for k in keys})
    view["n"] = summary["n"]
    view["diverged"] = summary["n_diverged"]
    view["median [95% CI]"] = [_ci_cell(*r) for r in summary[["median", "median_ci_low", "median_ci_high"]].to_numpy()]
    view["mean [95% CI]"] = [_ci_cell(*r) for r in summary[["mean", "mean_ci_low", "mean_ci_high"]].to_numpy()]
    if "wall_time_s_mean" in summary:
        view["time/trial [s]"] = summary["wall_time_s_mean"].map(lambda v: fmt(v, 1))
    return frame_to_markdown(view)


def summary_with_time(df: pd.DataFrame, by: Sequence[str], **kwargs) -> pd.DataFrame:
    """summarize() plus the mean per-trial wall time of each group (paper's runtime column)."""
    summary = summarize(df, by=by, **kwargs)
    keys = [c for c in by if c in df.columns]
    if "wall_time_s" in df.columns and keys:
        times = df.groupby(keys, dropna=False, sort=False)["wall_time_s"].mean().rename("wall_time_s_mean")
        summary = summary.merge(times.reset_index(), on=keys, how="left")
    return summary


def all_comparisons(df: pd.DataFrame, blocks: Sequence[str] = BLOCK_COLUMNS) -> pd.DataFrame:
    """Mann–Whitney comparisons for the report: DAS against every other method (all
    method pairs if the data has no DAS trials) within each problem, op set and hyperparameter
    set; and all pairs of hyperparameter sets within each method (Table 3)."""
    blocks = [c for c in blocks if c in df.columns]
    method_ref = "DAS" if (df["method"] == "DAS").any() else None
    methods = compare_all(df, "method", blocks + ["problem", "op_set", "hparams"], reference=method_ref)
    hparams = compare_all(df, "hparams", blocks + ["problem", "op_set", "method"])
    return pd.concat([methods.assign(between="method"), hparams.assign(between="hparams")], ignore_index=True)


FIGURE_FORMATS = ("png", "pdf", "svg")


class _Report:
    """Accumulates report.md's lines; writes figures and LaTeX tables next to it."""

    def __init__(self, out_dir: Path, dpi: int, figure_format: str = "png"):
        self.out_dir, self.dpi, self.lines, self.figure_format = out_dir, dpi, [], figure_format

    def name(self, stem: str) -> str:
        """A figure's file name in the report's format (png, or pdf / svg for a paper)."""
        return f"{stem}.{self.figure_format}"

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def figure(self, fig, name: str, caption: str) -> None:
        save_figure(fig, self.out_dir / name, dpi=self.dpi)
        self.add(f"![{name}]({name})", "", f"*{caption}*", "")

    def write(self) -> Path:
        path = self.out_dir / REPORT_MD
        atomic_write_text(path, "\n".join(self.lines).rstrip() + "\n")
        return path


def _block_figures(rep: _Report, block: pd.DataFrame, prefix: str, threshold: float, ref=None) -> None:
    rows = table_rows(block)
    for column in ("space", "hparams"):          # the paper's values of this block's space and set only
        if ref is not None and column in ref.columns and column in block.columns and block[column].nunique() == 1:
            ref = ref[ref[column] == block[column].iloc[0]]
    rep.figure(distribution_figure(block, by=rows, reference=ref), rep.name(f"{prefix}_distribution"),
               "Architecture PSNR per trial (box: quartiles; points: trials; n and diverged counts under each group"
               + ("; red bars: the paper's medians" if ref is not None and len(ref) else "") + ")")
    one_shot = block[has_one_shot(block)]
    if len(one_shot):
        hue = ["op_set"] + varying(one_shot, ["method", "hparams"], ["problem", "op_set"])
        for mode in DEGENERATE_FILTERS:
            rep.figure(scatter_figure(one_shot, hue=hue, degenerate=mode, threshold=threshold),
                       rep.name(f"{prefix}_scatter_{mode}"),
                       f"Architecture vs one-shot PSNR, degenerate filter '{mode}' (threshold {threshold:g} dB)")
    for problem in sort_values("problem", block["problem"].tolist()):
        for op_set in sort_values("op_set", block["op_set"].tolist()):
            sub = block[(block["problem"] == problem) & (block["op_set"] == op_set)]
            _architecture_figures(rep, sub, f"{prefix}_{slug(problem)}_{slug(op_set)}")


def _searched_methods(sub: pd.DataFrame) -> list[str]:
    """Methods whose architecture differs between trials (fixed baselines are skipped)."""
    counts = sub.groupby("method")["architecture"].nunique()
    return [m for m in sort_values("method", sub["method"].tolist()) if counts.get(m, 0) > 1]


def _architecture_figures(rep: _Report, sub: pd.DataFrame, prefix: str) -> None:
    methods = _searched_methods(sub)
    finite = sub[np.isfinite(sub["arch_psnr"].to_numpy(float))]
    if not methods or len(finite) == 0:
        return
    where = f"{label('problem', sub['problem'].iloc[0])}, {label('op_set', sub['op_set'].iloc[0])}"
    picks = [best_and_worst(sub, m, sub["problem"].iloc[0], sub["op_set"].iloc[0])
             for m in methods if np.isfinite(sub.loc[sub["method"] == m, "arch_psnr"].to_numpy(float)).any()]
    if not picks:
        return
    trials = pd.concat(picks)
    if all(is_cell_architecture(str(a)) for a in trials["architecture"]):
        for _, r in trials[trials["rank"] == "best"].iterrows():
            fig = cell_graph_figure(r["architecture"], op_meta=parse_op_meta(r.get("op_meta")),
                                    title=f"Best {r['method']} cell ({where}, {r['arch_psnr']:.2f} dB)")
            rep.figure(fig, rep.name(f"{prefix}_cell_{slug(r['method'])}"), f"Best found cell of {r['method']} ({where})")
    else:
        rep.figure(architecture_figure(trials), rep.name(f"{prefix}_architectures"),
                   f"Best and worst architectures per method ({where}), as in Fig. 4")
    one_shot = finite[has_one_shot(finite)]
    if len(one_shot):
        best = one_shot.loc[one_shot["arch_psnr"].idxmax()]
        try:
            fig = alpha_trajectory_figure(sub, best["trial_id"])
        except (FileNotFoundError, KeyError):
            rep.add(f"(No α history saved for the best DAS-like trial of {where}.)", "")
            return
        rep.figure(fig, rep.name(f"{prefix}_alpha"), f"softmax(α) over search epochs, best {best['method']} trial ({where})")


def write_report(
    df: pd.DataFrame,
    out_dir: Union[str, os.PathLike],
    reference: Union[None, str, pd.DataFrame] = None,
    threshold: float = DEFAULT_THRESHOLD,
    ddof: int = 0,
    n_resamples: int = 9999,
    seed: int = 0,
    figures: bool = True,
    dpi: int = 110,
    power: bool = True,
    ci_target: float = 0.5,
    power_resamples: int = 500,
    figure_format: str = "png",
) -> Path:
    """Write the full report for the trials in `df` into `out_dir`; return report.md's path.

    reference: None, "table1" or a tidy frame (see analysis.reference) printed as
    "ours (paper, Δ)". threshold: degenerate PSNR threshold of App. A. ddof: of
    the std. n_resamples, seed: of the bootstrap CIs. figures=False skips the figures
    (fast); dpi: their resolution; figure_format: "png", or "pdf" / "svg" (vector, for a
    paper). One section per (experiment, space).
    power: add the section "How many trials are enough" (:func:`write_power_section`): the trials
    per row for a median CI half-width of ``ci_target`` dB, and power curves from
    ``power_resamples`` resampled studies.
    """
    if len(df) == 0:
        raise ValueError("write_report: the DataFrame has no trials")
    if figure_format not in FIGURE_FORMATS:
        raise ValueError(f"figure_format={figure_format!r} is not allowed; choose one of {list(FIGURE_FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ref = _resolve_reference(reference)
    blocks = [c for c in BLOCK_COLUMNS if c in df.columns]
    summary = summary_with_time(df, blocks + list(GROUP_COLUMNS), ddof=ddof,
                                n_resamples=n_resamples, seed=seed)
    correlations = correlation_table(df, by=blocks + list(CORRELATION_GROUPS), threshold=threshold)
    comparisons = all_comparisons(df, blocks)
    atomic_write_text(out / SUMMARY_CSV, summary.to_csv(index=False))
    atomic_write_text(out / CORRELATIONS_CSV, correlations.to_csv(index=False))
    atomic_write_text(out / COMPARISONS_CSV, comparisons.to_csv(index=False))

    rep = _Report(out, dpi, figure_format)
    _write_header(rep, df, threshold=threshold, ddof=ddof, n_resamples=n_resamples, seed=seed)
    for key in block_keys(df, blocks):
        prefix = "_".join(slug(k) for k in key) or "results"
        rep.add(f"## {' / '.join(str(k) for k in key) or 'results'}", "")
        block = _select(df, blocks, key)
        _write_tables(rep, block, prefix, ref, ddof, _select(summary, blocks, key),
                      _select(correlations, blocks, key), _select(comparisons, blocks, key))
        _write_dead_states(rep, block)
        if power:
            write_power_section(rep, block, prefix, ci_target, power_resamples, seed, figures)
        if figures:
            rep.add("### Figures", "")
            _block_figures(rep, block, prefix, threshold, ref)
    return rep.write()


POWER_GRID = (5, 8, 10, 15, 20, 25, 30, 40, 50, 75, 100, 150, 200, 300, 400)


def write_power_section(rep: _Report, block: pd.DataFrame, prefix: str, ci_target: float = 0.5,
                        n_resamples: int = 500, seed: int = 0, figures: bool = True) -> None:
    """The section "How many trials are enough" of one report block: per row, the trials for a
    median CI half-width of ``ci_target`` dB; the power of each comparison (DAS against every other
    row of its op set) as a function of trials per row, with a figure (Table 1's findings: see
    :func:`analysis.findings_power`, which experiments/run_table1.py writes to findings.md).  Pilots
    under MIN_PILOT trials per row get the table and a note only: their resamples say little about
    larger studies."""
    rows = [c for c in ("problem", "op_set", "method", "hparams") if c in block]
    counts = finite_counts(block, rows)
    smallest = int(counts.min()) if len(counts) else 0
    rep.add("### How many trials are enough", "",
            "The trials of this study (the *pilot*) are resampled with replacement to other trial counts, "
            "and each statistic or test is recomputed on the resamples. **Assumption:** the pilot's "
            "distribution stands in for the population (the bootstrap's assumption), so a rare collapse the "
            "pilot never drew is absent from every estimate. "
            f"A row with fewer than {MIN_PILOT} finite trials is flagged: its resamples take a few distinct "
            f"values only (with {MIN_PILOT} trials the resampled median lies between the pilot's 3rd and 8th "
            "values in 96 % of resamples), so its estimates say little about a larger study.", "")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallPilotWarning)
        need = trials_needed(block, ci_target, "median", by=rows, grid=POWER_GRID, n_resamples=n_resamples * 2,
                             seed=seed)
    need["needed"] = integer_cells(need["needed"])
    shown = need.rename(columns={"n_pilot": "n", "half_width_now": "CI ± now [dB]",
                                 "needed": f"trials for ± {ci_target:g} dB", "small_pilot": "small pilot"})
    rep.add(f"Trials per row for a 95 % CI of the median within ± {ci_target:g} dB (–: more than "
            f"{POWER_GRID[-1]}):", "",
            frame_to_markdown(shown.drop(columns=["target", "half_width_at_needed", "reached"])), "")
    if smallest < MIN_PILOT:
        rep.add(f"The smallest row has {smallest} trials (< {MIN_PILOT}): no power curves, "
                "since resampling so few trials would mostly echo them. Run more trials "
                "(`--trials`, or `--target-ci` to stop when the medians are tight).", "")
        return
    curves = power_curves(block, grid=POWER_GRID, n_resamples=n_resamples, seed=seed)
    if len(curves):
        atomic_write_text(rep.out_dir / f"{prefix}_power_curves.csv", curves.to_csv(index=False))
        summary = curves.groupby(["problem", "comparison"], sort=False).agg(
            n_a=("n_a", "first"), n_b=("n_b", "first"), needed=("needed", "first")).reset_index()
        summary["needed"] = integer_cells(summary["needed"])
        summary = summary.rename(columns={"needed": "trials per row for 80 % power"})
        rep.add("Power of each comparison (two-sided Mann–Whitney at α = 0.05, in the pilot's direction; "
                f"{n_resamples} resampled studies per trial count; –: more than {POWER_GRID[-1]}; "
                f"curves in `{prefix}_power_curves.csv`):", "", frame_to_markdown(summary), "")
        if figures:
            rep.figure(power_figure(curves), rep.name(f"{prefix}_power"),
                       "Power against trials per row (band: ± 2 Monte-Carlo standard errors; dashed: 80 %)")
    if set(block.get("experiment", pd.Series(dtype=str)).unique()) == {"table1"}:
        rep.add("For the paper's Table 1 findings, `findings.md` next to this report gives the trials per row "
                "each finding needs for 80 % power (`analysis.findings_power`).", "")


def _write_dead_states(rep: _Report, block: pd.DataFrame) -> None:
    """Cell space: trials whose discrete cell runs a CNN (Net, Learnable Grad.) on a dead state."""
    dead = dead_state_summary(block)
    if len(dead) == 0 or dead["n_dead_readers"].sum() == 0:
        return
    rep.add("### Dead states", "",
            "Trials whose cell feeds an identically-zero state (all its inputs are zero edges) into a "
            "Net or Learnable-Grad. op. That CNN's BatchNorm sees zero variance, and in eval mode it can "
            "blow up (docs/results/archive/table2_cpu_before_stage6). Medians and minima of the architecture PSNR [dB] of the "
            "trials with and without such an edge:", "", frame_to_markdown(dead), "")


def block_keys(df: pd.DataFrame, blocks: Sequence[str]) -> list[tuple]:
    """The report's sections: each (experiment, space) present, in the paper's order."""
    if not blocks:
        return [()]
    return [tuple(r) for r in sort_frame(df[list(blocks)].drop_duplicates(), blocks).to_numpy()]


def _select(frame: pd.DataFrame, blocks: Sequence[str], key: tuple) -> pd.DataFrame:
    """The rows of `frame` in section `key`."""
    if not blocks or len(frame) == 0:
        return frame
    return frame[(frame[list(blocks)] == list(key)).all(axis=1)]


def _write_header(rep: _Report, df: pd.DataFrame, threshold: float, ddof: int, n_resamples: int,
                  seed: int) -> None:
    sources = sorted(df["results_dir"].unique()) if "results_dir" in df else []
    origin = (f" from {len(sources)} results folder(s):" if sources else " (from an in-memory table)")
    rep.add("# DAS results report", "",
            f"{len(df)} trials ({int(df['diverged'].sum())} diverged){origin}", "",
            *[f"- `{s}`" for s in sources], "",
            "Conventions: statistics over the finite architecture PSNRs of each group; diverged trials "
            f"(NaN PSNR) are excluded from the numbers and counted in `n`. Std with ddof={ddof}. "
            f"Bootstrap: percentile 95% CIs, {n_resamples} resamples, seed {seed}. "
            f"Degenerate threshold {threshold:g} dB (App. A: 'search' removes 1-shot < threshold, "
            "'all' removes 1-shot or architecture < threshold).", "",
            f"Files: [{SUMMARY_CSV}]({SUMMARY_CSV}), [{CORRELATIONS_CSV}]({CORRELATIONS_CSV}), "
            f"[{COMPARISONS_CSV}]({COMPARISONS_CSV}).", "")


def _write_tables(rep: _Report, block: pd.DataFrame, prefix: str, ref, ddof: int, summary: pd.DataFrame,
                  corr: pd.DataFrame, comp: pd.DataFrame) -> None:
    table = results_table(block, rows=table_rows(block), ddof=ddof, reference=ref)
    atomic_write_text(rep.out_dir / f"{prefix}_table.tex", table.to_latex())
    rep.add("Architecture validation PSNR [dB]" + (" — ours (paper, Δ)" if ref is not None else "")
            + f" (LaTeX: `{prefix}_table.tex`):", "", table.to_markdown(),
            "### Medians and means with bootstrap 95% CIs", "",
            ci_markdown(summary, list(GROUP_COLUMNS)), "")
    if len(corr):
        shown = [c for c in CORRELATION_GROUPS if c in corr] + [
            "filter", "n_total", "n_removed", "n", "n_excluded", "pearson_r", "pearson_p",
            "spearman_rho", "spearman_p", "kendall_tau", "kendall_p", "slope", "intercept"]
        rep.add("### One-shot vs architecture PSNR correlation", "",
                "n_removed: degenerate trials removed by the filter; n_excluded: NaN trials left out.", "",
                frame_to_markdown(corr[shown]), "")
    if len(comp):
        shown = [c for c in ("between", "problem", "op_set", "method", "hparams") if c in comp] + [
            "a", "b", "n_a", "n_b", "u", "p_value", "prob_a_beats_b", "rank_biserial"]
        rep.add("### Comparisons (Mann–Whitney U, two-sided)", "",
                "prob_a_beats_b = P(A > B) + ½ P(A = B) for a random trial of each; "
                "rank_biserial = 2·prob − 1. The `method`/`hparams` column is blank where it is compared.", "",
                frame_to_markdown(comp[shown].fillna({c: "" for c in ("method", "hparams")})), "")
