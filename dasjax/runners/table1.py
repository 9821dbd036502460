#!/usr/bin/env python
"""Table 1 of the paper: sequential space, 8 method rows x {blur, downsampling}, and Figures 3, 4, 6.

    dasjax table1                   # 'paper' on a GPU, 'smoke' otherwise
    dasjax table1 --preset cpu      # full width/epochs, trials sized for 2 CPU cores
    dasjax table1 --preset paper --rows das_good,das_all --problems blur

Each row x problem is one batched program over its trials.  Random Sampling and Random
Search share one batched retraining of 5 x T random architectures: random sampling reports
candidate 0 of each seed, random search the best of the seed's 5 (by validation PSNR).
Outputs (``--out``, default results/table1-<preset>/): trials.csv, runs/<problem>/<row>/
(per-row trials.csv, config.json, arrays.npz), table1.md (ours beside the paper's), summary.csv,
findings.md / findings.csv (whether each of the paper's qualitative findings holds, with tests),
wall_times.csv, figures/ (fig3, fig4, fig6) and report/ (the full analysis report).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path


from .common import (reports_here, Row, build_parser, check_out_dir, env_summary, finish_table,
                               main_guard, resolve, run_fingerprint, run_rows)
from .common import trials_label
from dasjax.logs import say
from dasjax.results import atomic_write_text

ROWS = [
    Row("lg_only", "good", "Learnable Grad. only"),
    Row("nets_only", "good", "Nets only"),
    Row("das_good", "good", "DAS"),
    Row("rs_good", "good", "Random Sampling"),
    Row("rsearch_good", "good", "Random Search"),
    Row("das_all", "all", "DAS"),
    Row("rs_all", "all", "Random Sampling"),
    Row("rsearch_all", "all", "Random Search"),
]


def figures(df, out: Path) -> list[Path]:
    """Fig. 3 (scatter + regression, correlation in legend), Fig. 6 (degenerate removed), Fig. 4."""
    import analysis
    fig_dir = out / "figures"
    das = df[df["method"] == "DAS"]
    written = []
    if len(das):
        written.append(analysis.save_figure(analysis.scatter_figure(das), fig_dir / "fig3_scatter.png"))
        for mode in ("search", "all"):
            written.append(analysis.save_figure(analysis.scatter_figure(das, degenerate=mode),
                                                fig_dir / f"fig6_scatter_no_degenerate_{mode}.png"))
    for problem in sorted(df["problem"].unique()):
        picks = []
        for method in ("Random Sampling", "DAS"):
            sub = df[(df["problem"] == problem) & (df["op_set"] == "good") & (df["method"] == method)]
            if sub["arch_psnr"].notna().any():
                picks.append(analysis.best_and_worst(df, method, problem, "good"))
        if picks:
            import pandas as pd
            fig = analysis.architecture_figure(pd.concat(picks))
            written.append(analysis.save_figure(fig, fig_dir / f"fig4_architectures_{problem}.png"))
    return written


def write_findings(df, out: Path) -> str:
    """findings.md / findings.csv: whether each of the paper's Table 1 findings holds here; prints it."""
    import analysis
    findings = analysis.table1_findings(df)
    md = analysis.findings_markdown(findings)
    atomic_write_text(out / "findings.md", "# The paper's Table 1 findings, checked on these trials\n\n"
                      "Verdicts and tests: see `analysis/findings.py`.\n\n" + md)
    atomic_write_text(out / "findings.csv", findings.to_csv(index=False))
    say("\nThe paper's findings on these trials (findings.md):\n")
    for r in findings.itertuples(index=False):
        say(f"  {r.problem:>12} | {r.finding}: {r.verdict}  [{r.ours}]")
    power_md = write_findings_power(df, out) if (findings["verdict"] != "not measured").any() else ""
    if power_md:
        atomic_write_text(out / "findings.md", (out / "findings.md").read_text() + "\n" + power_md)
    return md


POWER_GRID = (10, 25, 50, 100, 200, 300)
POWER_RESAMPLES = 100


def write_findings_power(df, out: Path) -> str:
    """findings_power.csv and the markdown of "trials per row for 80 % power" for each finding, from
    resampled studies of these trials; "" when a row has fewer than analysis.power.MIN_PILOT trials
    (a note says so: resampling so few trials would mostly echo them)."""
    import analysis
    from analysis.power import MIN_PILOT
    from analysis.stats import finite_counts
    from analysis.tables import frame_to_markdown, integer_cells
    smallest = int(finite_counts(df, ("problem", "op_set", "method")).min())
    head = "## How many trials are enough\n\n"
    if smallest < MIN_PILOT:
        (out / "findings_power.csv").unlink(missing_ok=True)          # no stale estimates from an earlier run
        return head + (f"The smallest row has {smallest} trials (< {MIN_PILOT}): too few to resample into "
                       "larger studies, so no power estimates.\n")
    say(f"\n[table1] power of each finding: {POWER_RESAMPLES} resampled studies per trial count "
          f"{list(POWER_GRID)} ...")
    fp = analysis.findings_power(df, grid=POWER_GRID, n_resamples=POWER_RESAMPLES, test_resamples=99)
    atomic_write_text(out / "findings_power.csv", fp.to_csv(index=False))
    cols = ["finding", "problem", "verdict_now"] + [c for c in fp if c.startswith("power_at_")]
    shown = fp[cols].copy()
    shown["trials for 80 % power"] = integer_cells(fp["needed"])
    table = frame_to_markdown(shown)
    return (head + "Power of each finding at n trials per row: the share of "
            f"{POWER_RESAMPLES} studies, resampled from these trials, in which the finding's test says "
            "\"holds\" (α = 0.05); the last column is the fewest trials per row in the grid with 80 % power "
            f"(–: more than {POWER_GRID[-1]}). The assumption: these trials' distribution stands in for the "
            "population. Data: `findings_power.csv`.\n\n" + table + "\n")


def main(argv=None) -> int:
    parser = build_parser(__doc__, ROWS)
    args = parser.parse_args(argv)
    preset, overrides, seeds, rows, problems, hp, out = resolve(args, "table1", ROWS)
    check_out_dir(out, run_fingerprint("table1", preset, overrides, seeds, hp, adaptive=args.adaptive), args.overwrite)
    say(f"[table1] preset '{preset}', {trials_label(seeds, args.adaptive)}, rows {[r.key for r in rows]}, "
          f"problems {problems}, hparams {hp.name}; {env_summary()}")
    say(f"[table1] writing to {out}/")
    t0 = time.perf_counter()
    df = run_rows(
        adaptive=args.adaptive, table="table1", rows=rows, problems=problems, seeds=seeds, overrides=overrides,
        hp=hp, out=out)
    if not reports_here():
        return 0

    finish_table(df, out, name="table1", heading=f"Table 1 (preset {preset}, {trials_label(seeds, args.adaptive)})\n\n"
                 "Each cell: ours (paper, ours - paper).", reference="table1", figures=figures,
                 no_figures=args.no_figures, t0=t0)
    write_findings(df, out)
    return 0


if __name__ == "__main__":
    sys.exit(main_guard(main))
