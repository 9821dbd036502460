#!/usr/bin/env python
"""DAS variants side by side: DARTS (the paper's DAS) and every registered variant, good and all ops.

    dasjax variants --preset smoke            # a pipeline check, minutes
    dasjax variants --preset cpu              # 8 trials per row, full width and epochs
    dasjax variants --preset paper --rows das_all,gdas_all,drnas_all

Every row is a method of dasjax.methods (DAS = DARTS; GDAS, SNAS, DrNAS, FairDARTS, beta-DARTS,
SDARTS-RS, SDARTS-ADV, DARTS-PT: dasjax.algorithms, their defaults cited in docs/register.md), one batched
program per row and problem, under one hyperparameter set (--hparams, H1 by default).
Outputs (``--out``, default results/variants-<preset>/): trials.csv, runs/, variants.md (the
paper's statistics per row, the paper's DAS values beside ours), summary.csv, variants_stats.csv
(per row: median, one-shot / architecture rank correlation, the share of collapsed architectures,
Mann-Whitney against DARTS with Holm's correction), variants_power.csv (trials per row for 80 %
power against DARTS), figures/variants_<problem>.png and report/.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path


from .common import (Row, build_parser, check_out_dir, env_summary, finish_table, main_guard,
                          reports_here, resolve, run_fingerprint, run_rows, trials_label)
from dasjax.logs import say
from dasjax.methods import VARIANT_ALGORITHMS
from dasjax.results import atomic_write_text

METHODS = ["DAS", *VARIANT_ALGORITHMS]
ROWS = [Row(f"{'das' if m == 'DAS' else VARIANT_ALGORITHMS[m].replace('-', '_')}_{op_set}", op_set, m)
        for op_set in ("good", "all") for m in METHODS]

#: a trial has collapsed when its architecture PSNR is below the problem's floor + this (dB)
COLLAPSE_MARGIN_DB = 2.0


def floor_psnr(config: dict, n: int = 2432) -> float:
    """PSNR of the network input x0 itself (no reconstruction), on n fresh validation samples of
    the row's problem: the level a network that learnt nothing scores."""
    import jax
    import dasjax
    cfg = dasjax.Config.from_dict(config)
    batch = dasjax.make_problem(cfg.problem).sample(jax.random.key(0), n, "val")
    return float(dasjax.psnr(batch.x0, batch.x, peak=cfg.problem.psnr_peak, mode=cfg.problem.psnr_mode))


def holm(pvalues) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (NaN stays NaN)."""
    import numpy as np
    p = np.asarray(pvalues, float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok])]
    m, running = len(order), 0.0
    for i, idx in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[idx]))
        out[idx] = running
    return out.tolist()


def variant_stats(df, out: Path):
    """variants_stats.csv: per (problem, op set, method) the median, the rank correlation of the
    one-shot and the architecture PSNR, the collapsed share and the test against DARTS."""
    import analysis
    import numpy as np
    import pandas as pd
    from analysis.load import load_config
    floors = {}
    for problem in df["problem"].unique():
        rows = sorted((out / "runs" / problem).glob("*/config.json"))
        floors[problem] = floor_psnr(load_config(rows[0].parent)["run"]["config"]) if rows else np.nan
    corr = analysis.correlation_table(df, by=("problem", "op_set", "method"), filters=("none",))
    tests = analysis.compare_all(df, reference="DAS", within=("problem", "op_set"))
    rows = []
    for (problem, op_set, method), g in df.groupby(["problem", "op_set", "method"], sort=False):
        x = g["arch_psnr"].to_numpy(float)
        c = corr[(corr.problem == problem) & (corr.op_set == op_set) & (corr.method == method)]
        t = tests[(tests.problem == problem) & (tests.op_set == op_set) & (tests.b == method)]
        rows.append({"problem": problem, "op_set": op_set, "method": method, "n": int(np.isfinite(x).sum()),
                     "median": float(np.nanmedian(x)), "floor_psnr": floors[problem],
                     "collapsed_share": float(np.mean(x[np.isfinite(x)] < floors[problem] + COLLAPSE_MARGIN_DB))
                     if np.isfinite(x).any() else np.nan,
                     "kendall_tau": float(c["kendall_tau"].iloc[0]) if len(c) else np.nan,
                     "spearman_rho": float(c["spearman_rho"].iloc[0]) if len(c) else np.nan,
                     "p_vs_darts": float(t["p_value"].iloc[0]) if len(t) else np.nan,
                     "prob_beats_darts": 1.0 - float(t["prob_a_beats_b"].iloc[0]) if len(t) else np.nan})
    stats = pd.DataFrame(rows)
    stats["p_vs_darts_holm"] = np.nan
    for _, idx in stats.groupby(["problem", "op_set"]).groups.items():
        stats.loc[idx, "p_vs_darts_holm"] = holm(stats.loc[idx, "p_vs_darts"])
    atomic_write_text(out / "variants_stats.csv", stats.to_csv(index=False))
    return stats


def stats_markdown(stats) -> str:
    from analysis.tables import frame_to_markdown
    shown = stats.copy()
    for c in ("median", "floor_psnr", "kendall_tau", "spearman_rho"):
        shown[c] = shown[c].map(lambda v: f"{v:.2f}")
    shown["collapsed_share"] = shown["collapsed_share"].map(lambda v: f"{v:.2f}")
    shown["prob_beats_darts"] = shown["prob_beats_darts"].map(lambda v: "" if v != v else f"{v:.2f}")
    for c in ("p_vs_darts", "p_vs_darts_holm"):
        shown[c] = shown[c].map(lambda v: "" if v != v else f"{v:.3g}")
    return (f"## Per row\n\nmedian architecture PSNR (dB); Kendall's τ / Spearman's ρ of the one-shot and "
            f"the architecture PSNR; collapsed share: trials below the problem's floor (PSNR of x⁰ itself) "
            f"+ {COLLAPSE_MARGIN_DB:g} dB; P(variant > DARTS) and the two-sided Mann–Whitney p against DARTS, "
            "raw and Holm-adjusted within each problem and op set. Data: `variants_stats.csv`.\n\n"
            + frame_to_markdown(shown) + "\n")


def power_section(df, out: Path) -> str:
    import analysis
    from analysis.power import MIN_PILOT
    from analysis.stats import finite_counts
    from analysis.tables import frame_to_markdown, integer_cells
    head = "## How many trials are enough\n\n"
    smallest = int(finite_counts(df, ("problem", "op_set", "method")).min())
    if smallest < MIN_PILOT:
        return head + f"The smallest row has {smallest} trials (< {MIN_PILOT}): too few to resample.\n"
    curves = analysis.power_curves(df, reference="DAS", grid=(10, 25, 50, 100, 200), n_resamples=200)
    atomic_write_text(out / "variants_power.csv", curves.to_csv(index=False))
    needed = curves.groupby(["problem", "comparison"], sort=False)["needed"].first().reset_index()
    needed["trials for 80 % power"] = integer_cells(needed["needed"])
    return (head + "Fewest trials per row (of 10, 25, 50, 100, 200) at which a two-sided Mann–Whitney test "
            "at α = 0.05 finds the difference in 80 % of studies resampled from these trials (–: more). "
            "Data: `variants_power.csv`.\n\n" + frame_to_markdown(needed.drop(columns="needed")) + "\n")


def figures(df, out: Path) -> list[Path]:
    """One distribution figure per problem: every row's trials, the paper's DAS median marked."""
    import analysis
    ref = analysis.reference_table("table1")
    written = []
    for problem in sorted(df["problem"].unique()):
        sub = df[df["problem"] == problem]
        fig = analysis.distribution_figure(sub, by=("op_set", "method"))
        ax = fig.axes[0]
        paper = ref[(ref["problem"] == problem) & (ref["method"] == "DAS") & (ref["stat"] == "median")]
        for op_set, style in (("good", "--"), ("all", ":")):
            m = paper[paper["op_set"] == op_set]["value"] if op_set in set(sub["op_set"]) else []
            if len(m):
                ax.axhline(float(m.iloc[0]), color="grey", ls=style, lw=1,
                           label=f"paper's DAS median, {op_set} ops")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
        written.append(analysis.save_figure(fig, out / "figures" / f"variants_{problem}.png"))
    return written


def main(argv=None) -> int:
    parser = build_parser(__doc__, ROWS)
    args = parser.parse_args(argv)
    preset, overrides, seeds, rows, problems, hp, out = resolve(args, "variants", ROWS)
    check_out_dir(out, run_fingerprint("variants", preset, overrides, seeds, hp, adaptive=args.adaptive),
                  args.overwrite)
    say(f"[variants] preset '{preset}', {trials_label(seeds, args.adaptive)}, rows {[r.key for r in rows]}, "
          f"problems {problems}, hparams {hp.name}; {env_summary()}")
    say(f"[variants] writing to {out}/")
    t0 = time.perf_counter()
    df = run_rows(adaptive=args.adaptive, table="variants", rows=rows, problems=problems, seeds=seeds,
                  overrides=overrides, hp=hp, out=out)
    if not reports_here():
        return 0
    finish_table(df, out, name="variants",
                      heading=f"DAS variants (preset {preset}, {trials_label(seeds, args.adaptive)})\n\n"
                      "Each cell: ours (the paper's DAS row where it has one, ours - paper).",
                      reference="table1", figures=figures, no_figures=args.no_figures, t0=t0)
    stats = variant_stats(df, out)
    extra = stats_markdown(stats) + "\n" + power_section(df, out)
    atomic_write_text(out / "variants.md", (out / "variants.md").read_text() + "\n" + extra)
    say("\n" + extra)
    return 0


if __name__ == "__main__":
    sys.exit(main_guard(main))
