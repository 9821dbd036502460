#!/usr/bin/env python
"""Curvature study (RobustDARTS): lambda_max of the alpha Hessian per trial, DAS vs DAS-ES vs DAS-ADA.

    dasjax curvature --preset smoke
    dasjax curvature --preset cpu --problems blur --op-sets all     # ~90 min, 2 CPU cores
    dasjax curvature --preset paper                                   # 75 trials per row (GPU)
    dasjax curvature --preset cpu --set es_factor=1.5 --set ada_min_wd=3e-4

Rows: {good, all} ops x {DAS, DAS-ES, DAS-ADA}, columns blur / downsampling; each row x problem is one
batched program over its trials.  Every row tracks lambda_max (the dominant eigenvalue of the Hessian
of the validation loss with respect to alpha) after every ``curvature_every`` epochs: 2 by default,
as RobustDARTS (--set curvature_every=1 for every epoch at twice the overhead; docs/curvature.md).
DAS-ES stops a trial when the local average of lambda_max has grown by es_factor (1.3) over es_lag
estimates and returns its state from before the growth; DAS-ADA rolls the trial back there and
raises its theta weight decay by ada_factor (3), up to ada_max_wd / ada_max_rollbacks
(dasjax/early_stop.py).

Outputs (``--out``, default results/curvature-<preset>/): trials.csv (with lambda_max_final,
stop_epoch, early_stopped, n_rollbacks, theta_wd_final, search_epochs per trial), runs/<problem>/<row>/
(per-row trials.csv, config.json, arrays.npz with the per-epoch lambda_max), curvature.md (the
Table 1-style comparison, the correlation of final lambda_max with architecture PSNR, the
early-stopping summary), curvature_correlation.csv, early_stop_summary.csv, summary.csv,
wall_times.csv, figures/ (lambda trajectories coloured by PSNR, lambda vs PSNR scatter) and report/.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path


from dasjax.logs import say
from dasjax.api import CURVATURE_EVERY
from dasjax.config import make_config
from .common import (reports_here, Row, UsageError, build_parser, check_out_dir, env_summary,
                               finish_table, main_guard, resolve, run_fingerprint, run_rows)
from .common import trials_label
from dasjax.results import atomic_write_text

ROWS = [
    Row("das_good", "good", "DAS"),
    Row("es_good", "good", "DAS-ES"),
    Row("ada_good", "good", "DAS-ADA"),
    Row("das_all", "all", "DAS"),
    Row("es_all", "all", "DAS-ES"),
    Row("ada_all", "all", "DAS-ADA"),
]


def load_with_arrays(df, out: Path):
    """The trials of ``df`` reloaded from their row folders, so that their arrays are reachable."""
    import analysis
    full = analysis.load_results(out / "runs")
    return full[full["local_trial_id"].isin(set(df["trial_id"]))]


def figures(df, out: Path) -> list[Path]:
    """lambda_max trajectories coloured by architecture PSNR; final lambda_max vs architecture PSNR."""
    import analysis
    full = load_with_arrays(df, out)
    full = full[analysis.has_curvature(full)]
    written = []
    if len(full):
        written.append(analysis.save_figure(analysis.trajectory_figure(full),
                                            out / "figures" / "lambda_trajectories.png"))
        if full["lambda_max_final"].notna().any():
            fig = analysis.scatter_figure(full, hue=["op_set", "method"], x="lambda_max_final")
            fig.suptitle("architecture PSNR against final lambda_max (Pearson r in the legend)")
            written.append(analysis.save_figure(fig, out / "figures" / "lambda_vs_arch_psnr.png"))
    return written


def curvature_sections(df, out: Path) -> str:
    """Markdown (and CSVs) of the correlation of final lambda_max with PSNR and of early stopping."""
    import analysis
    from analysis.tables import frame_to_markdown
    corr = analysis.lambda_correlation_table(df)
    corr_os = analysis.lambda_correlation_table(df, y="one_shot_psnr")
    summary = analysis.early_stop_summary(df)
    atomic_write_text(out / "curvature_correlation.csv", corr.to_csv(index=False))
    atomic_write_text(out / "early_stop_summary.csv", summary.to_csv(index=False))
    keep = ["problem", "op_set", "method", "hparams", "n", "n_excluded", "pearson_r", "pearson_p",
            "spearman_rho", "spearman_p", "kendall_tau", "kendall_p"]
    return ("\n## Final lambda_max vs architecture PSNR\n\n"
            "Over the trials where both are finite (n_excluded: diverged or NaN).  A negative coefficient "
            "means: more curvature, worse architecture (RobustDARTS's claim).\n\n"
            + frame_to_markdown(corr[[c for c in keep if c in corr]])
            + "\n## Final lambda_max vs one-shot PSNR\n\n"
            + frame_to_markdown(corr_os[[c for c in keep if c in corr_os]])
            + "\n## Early stopping\n\n"
            "n_stopped: trials DARTS-ES stopped; n_rolled_back: trials DARTS-ADA rolled back at least once; "
            "stop / search epochs are 0-based epoch indices / epochs trained.\n\n"
            + frame_to_markdown(summary))


def main(argv=None) -> int:
    parser = build_parser(__doc__, ROWS)
    args = parser.parse_args(argv)
    preset, overrides, seeds, rows, problems, hp, out = resolve(args, "curvature", ROWS)
    overrides.setdefault("curvature_every", CURVATURE_EVERY)
    try:
        cfg = make_config(**overrides)
        if cfg.search.curvature_every < 1:
            raise ValueError("curvature_every must be >= 1 here: every row of this study tracks lambda_max")
        make_config(**{**overrides, "early_stop": "ada"})          # the early-stopping settings must be valid too
    except ValueError as e:
        raise UsageError(str(e)) from None
    check_out_dir(out, run_fingerprint("curvature", preset, overrides, seeds, hp, adaptive=args.adaptive), args.overwrite)
    s = cfg.search
    say(f"[curvature] preset '{preset}', {trials_label(seeds, args.adaptive)}, rows {[r.key for r in rows]}, "
          f"problems {problems}, hparams {hp.name}, lambda_max every {s.curvature_every} epoch(s); {env_summary()}")
    first = make_config(**{**overrides, "early_stop": "es"}).search.es_first_fire_epoch
    if first >= s.epochs:
        say(f"[curvature] note: with {s.epochs} epochs the early-stopping rule cannot fire (its first "
              f"chance is epoch {first}: es_window + es_lag estimates, es_start_epoch {s.es_start_epoch}); "
              "DAS-ES and DAS-ADA then equal DAS")
    say(f"[curvature] writing to {out}/")
    t0 = time.perf_counter()
    df = run_rows(
        adaptive=args.adaptive, table="curvature", rows=rows, problems=problems, seeds=seeds, overrides=overrides,
        hp=hp, out=out)
    if not reports_here():
        return 0
    md = finish_table(df, out, name="curvature",
                      heading=f"DAS, DAS-ES and DAS-ADA (preset {preset}, {trials_label(seeds, args.adaptive)})\n\n"
                              "Architecture PSNR [dB] per row.", figures=figures, no_figures=args.no_figures, t0=t0)
    extra = curvature_sections(df, out)
    atomic_write_text(out / "curvature.md",
                      f"# DAS, DAS-ES and DAS-ADA (preset {preset}, {trials_label(seeds, args.adaptive)})\n\n"
                      "Architecture PSNR [dB] per row.\n\n" + md + extra)
    say(extra)
    return 0


if __name__ == "__main__":
    sys.exit(main_guard(main))
