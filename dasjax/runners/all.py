#!/usr/bin/env python
"""Every table of the paper in one run: Tables 1-5 and Fig. 7.

    dasjax all --preset smoke            # minutes on a CPU
    dasjax all --preset paper            # one GPU session

Before it starts, it prints the planned work per table (trials x steps) and an estimated time for
this device.  The estimate comes from the benchmark's measured per-trial-step times
(:mod:`dasjax.runners.estimate`) when the package holds them for this backend; otherwise from a
one-epoch measurement taken on the spot.  Each table goes to OUT/<table>/, with all of each
runner's outputs (resume included: rerunning skips finished rows).  OUT/report.md gathers the
tables, and OUT/wall_times.csv the wall time per table.  Table 4 (2D images) reads BSDS300 from
$DASJAX_BSDS300 and otherwise runs on the embedded sample images (labelled NOT BSDS300).
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

import jax
import pandas as pd

from .common import (UsageError, program_name, add_process_options, add_verbosity_options, apply_verbosity, command_for,
                     join_processes, main_guard, parse_set_items, process_argv, reports_here)
from .estimate import step_times
from dasjax.logs import say
from dasjax.presets import PRESETS, default_preset_name, get_preset
from dasjax.results import atomic_write_text
from analysis.files import EXIT_MACHINE

TABLES = ["table1", "table2", "table3", "table4", "table5", "das_single"]
CELL_COST = 5.0   # a cell-space step costs ~5x a sequential one on CPU (measured, issue #7 notes)
# a 2D step (128 crops of 40x40, good ops) costs this many 1D steps (128 x 50): measured on the 2-core CPU
# 106x (DAS step) and 78x (retraining step) against the 1D good-op steps (docs/bsds.md), against the 1D
# all-op steps the plan's times come from a little less; FLOP count: 89x.  It scales with the pixels per batch.
IMAGE_COST = {"search": 90.0, "retrain": 80.0}
NO_PROBLEMS = ("table4", "table5", "das_single")     # tables with their own problems: --problems is not passed


def planned_steps(table: str, trials: int, epochs: int, spe: int, cfg=None) -> dict:
    """(search, retrain) trial-steps in sequential-step units, from each runner's rows."""
    n = trials * epochs * spe
    if table == "table4":      # 2D denoising: Nets only, DAS (search + retrain), random sampling
        pixels = cfg.search.batch_size * cfg.problem.crop_size ** 2 if cfg is not None else 128 * 1600
        scale = pixels / (128 * 1600)
        return {"search": IMAGE_COST["search"] * scale * n, "retrain": IMAGE_COST["retrain"] * scale * 3 * n}
    if table == "table1":      # 2 problems x (LG, Nets, 2 x DAS, 2 x 5 random candidates)
        return {"search": 2 * 2 * n, "retrain": 2 * 14 * n}
    if table == "table2":      # cell space, 2 problems x (LG, Nets, 2 x DAS, 2 x random sampling)
        return {"search": CELL_COST * 2 * 2 * n, "retrain": CELL_COST * 2 * 6 * n}
    if table == "table3":      # 2 problems x 2 op sets x 5 sets of DAS (search + retrain)
        return {"search": 20 * n, "retrain": 20 * n}
    if table == "table5":      # cell space, blur x 2 op sets x 7 sets of DAS
        return {"search": CELL_COST * 14 * n, "retrain": CELL_COST * 14 * n}
    if table == "das_single":  # blur: DAS x 2 sets (search + retrain), DAS-single (2 pretrain, alpha-only search, retrain)
        return {"search": 3 * n, "retrain": 5 * n}
    raise ValueError(table)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog=program_name(), description=__doc__.strip(), formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default=None, help=f"one of {list(PRESETS)}; default: paper on a GPU, else smoke")
    ap.add_argument("--tables", default=",".join(TABLES), help=f"comma list of {TABLES}")
    ap.add_argument("--trials", type=int, default=None, help="trials per row for every table")
    ap.add_argument("--problems", default=None, help="comma list of problems for every table (default: each table's own)")
    ap.add_argument("--out", default=None, help="folder (default results/all-<preset>)")
    ap.add_argument("--overwrite", action="store_true",
                    help="replace results of a different configuration in each table's folder")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a config field in every table, e.g. --set noise_std=0.01 (repeatable)")
    ap.add_argument("--target-ci", type=float, default=None, metavar="DB",
                    help="adaptive rows in every table: stop a row once its median's 95%% CI is within ±DB "
                         "(the planned trials are then the most a row runs)")
    ap.add_argument("--trial-chunk", type=int, default=10, help="with --target-ci: seeds added per step")
    add_verbosity_options(ap)
    add_process_options(ap)
    args = ap.parse_args(argv)
    apply_verbosity(args)
    join_processes(args)                    # every table then runs over the same processes
    if args.preset is None:
        args.preset, why = default_preset_name()
        say(f"[all] no --preset given: using '{args.preset}' because {why}; choose with --preset")
    if args.preset not in PRESETS:
        raise UsageError(f"--preset={args.preset!r} is not allowed; choose one of {list(PRESETS)}")
    tables = [t.strip() for t in args.tables.split(",") if t.strip()]
    for t in tables:
        if t not in TABLES:
            raise UsageError(f"--tables: {t!r} is not allowed; choose from {TABLES}")
    if args.trials is not None and args.trials <= 0:
        raise UsageError(f"--trials={args.trials} must be a positive integer")
    out = Path(args.out or f"results/all-{args.preset}")
    sets = parse_set_items(args.set)

    import dasjax
    plan, total = [], 0.0
    for t in tables:
        p = get_preset(args.preset, t)
        try:
            cfg = dasjax.make_config(**{**p.overrides, **sets})
        except ValueError as e:
            raise UsageError(str(e)) from None
        trials = args.trials or (100 if (t == "table2" and args.preset == "paper") else p.trials)
        plan.append((t, trials, planned_steps(t, trials, cfg.search.epochs, cfg.search.steps_per_epoch, cfg), cfg))
    width = plan[0][3].space.width
    t_search, t_retrain, source = step_times(width)
    say(f"[all] preset '{args.preset}' on {jax.default_backend()} ({jax.devices()[0].device_kind}); "
          f"per-trial-step times {t_search * 1e3:.1f} ms (DAS) / {t_retrain * 1e3:.1f} ms (retrain) from {source}")
    say(f"{'table':8s} {'trials/row':>10s} {'DAS trial-steps':>16s} {'retrain trial-steps':>20s} {'estimate':>10s}")
    for t, trials, steps, _ in plan:
        share = 1.0 if not args.problems or t in NO_PROBLEMS else len(args.problems.split(",")) / 2
        est = share * (steps["search"] * t_search + steps["retrain"] * t_retrain)
        total += est
        say(f"{t:8s} {trials:10d} {steps['search']:16,.0f} {steps['retrain']:20,.0f} {est / 60:9.1f}m")
    say(f"[all] estimated total: {total / 3600:.2f} h (an estimate: compile time and load not included"
          + ("; with --target-ci an upper bound" if args.target_ci is not None else "") + ")")

    walls, sections = [], []
    for t, trials, _, _ in plan:
        runner = importlib.import_module(f"dasjax.runners.{t}")
        argv_t = ["--preset", args.preset, "--out", str(out / t), "--trials", str(trials)] + \
                 (["--overwrite"] if args.overwrite else []) + \
                 (["--problems", args.problems] if args.problems and t not in NO_PROBLEMS else []) + \
                 [a for item in args.set for a in ("--set", item)] + \
                 (["--target-ci", str(args.target_ci), "--max-trials", str(trials),
                   "--trial-chunk", str(args.trial_chunk)] if args.target_ci is not None else []) + \
                 process_argv(args) + ["-v"] * args.verbose + ["-q"] * args.quiet
        t0 = time.perf_counter()
        code = main_guard(runner.main, argv_t, program=command_for(t))
        walls.append({"table": t, "trials_per_row": trials, "wall_time_s": time.perf_counter() - t0,
                      "exit_code": code})
        if code == EXIT_MACHINE:          # the next tables would meet the same full or read-only disk
            print(f"[all] stopped at {t}: the file system refused a write; finished rows are kept, and "
                  f"rerunning this command resumes", file=sys.stderr)
            return EXIT_MACHINE
        if code != 0:
            say(f"[all] {t} failed with exit code {code}; continuing with the other tables")
            continue
        if reports_here():
            sections.append((out / t / f"{t}.md").read_text())
    if not reports_here():
        return 0 if all(w["exit_code"] == 0 for w in walls) else 1
    atomic_write_text(out / "wall_times.csv", pd.DataFrame(walls).to_csv(index=False))
    atomic_write_text(out / "report.md", "# All tables\n\n" + "\n\n".join(sections) +
                      "\n\n## Wall time per table\n\n" + "\n".join(
                          f"- {w['table']}: {w['wall_time_s'] / 60:.1f} min ({w['trials_per_row']} trials per row)"
                          for w in walls) + "\n\nPer-table reports and figures: `<table>/report/`, `<table>/figures/`.\n")
    say(f"[all] done; {out}/report.md gathers the tables, {out}/wall_times.csv the wall times")
    return 0 if all(w["exit_code"] == 0 for w in walls) else 1


if __name__ == "__main__":
    sys.exit(main_guard(main))
