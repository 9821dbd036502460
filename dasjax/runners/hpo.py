#!/usr/bin/env python
"""Hyperparameter optimisation of DAS (paper §4.1, App. E): Hyperband with random or BOHB-style TPE proposals.

    dasjax hpo --preset smoke                              # a pipeline check
    dasjax hpo --preset paper --objective one-shot --problems blur      # BOHB-one-shot-Blur
    dasjax hpo --preset paper --objective arch --problems blur          # BOHB-Blur (2x cost)
    dasjax table1 --hparams results/hpo-one-shot-blur-paper/incumbent.json

Searches the paper's Table 8 space (log-uniform learning rates / weight decays, categorical warm-ups,
alpha scheduler and alpha optimizer) for one problem and op set (default: all ops, register #26).
The budget is the number of epochs (search, and retraining with --objective arch); eta = 3 and
min budget = max budget / 9 give the rungs 50/9, 50/3, 50 -> 6, 17, 50 epochs (rounded half up).
One iteration is one Hyperband bracket (the paper ran 128).  Each rung is evaluated as one
batched program per optimizer-type group; survivors restart at the larger budget (docs/hpo.md).

Outputs (``--out``, default results/hpo-<objective>-<problem>-<preset>/): incumbent.json (a
HParamSet, for ``--hparams FILE.json`` / ``dasjax.hparams.load``), evaluations.csv (one row per
evaluation), trajectory.csv, figures/trajectory.png, config.json, run.json, and with Optuna
installed optuna.db, the evaluations as an Optuna study for its plots and dashboard
(``optuna-dashboard sqlite:///OUT/optuna.db``; dasjax.optuna_study).  A rerun of the same command
(or one with more --iterations) reuses the evaluations already in evaluations.csv.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


from dasjax.logs import say
from dasjax import __version__
from dasjax import hpo
from dasjax.config import make_config
from dasjax.optuna_study import STUDY_FILE, write_study
from .common import (DEFAULT_HPARAMS, reports_here, Row, UsageError, _normalized, _parse_value,
                          build_parser, check_out_dir, env_summary, main_guard, resolve)
from dasjax.results import atomic_write_text

OP_SETS = ["good", "all"]
ROWS = [Row(o, o, "DAS") for o in OP_SETS]
# Hyperband settings per preset (the config overrides come from dasjax.presets)
HPO_PRESETS = {
    "smoke": dict(iterations=3, max_budget=9),      # one cycle of the 3 brackets, 1 / 3 / 9 short epochs
    "cpu": dict(iterations=3, max_budget=50),       # one cycle at full width and 50 epochs
    "paper": dict(iterations=128, max_budget=50),   # the paper: 128 hyperband iterations
}


def build_hpo_parser() -> argparse.ArgumentParser:
    p = build_parser(__doc__, ROWS)
    p.set_defaults(problems="blur", op_sets="all", trials=1, rows="good,all")
    for action in p._actions:          # shared flags that mean something else (or nothing) here
        if action.dest == "trials":
            action.help = "seeds per configuration; the objective is their mean PSNR (docs/hpo.md: 1)"
        elif action.dest == "problems":
            action.help = "the problem to tune on (one of ['blur', 'downsampling'])"
        elif action.dest == "op_sets":
            action.help = "the operation set to tune with (one of ['good', 'all']; register #26: all)"
        elif action.dest == "seed":
            action.help = "seed of the proposals; configuration c runs with seeds seed + c*trials, ..."
        elif action.dest == "no_figures":
            action.help = "skip figures/trajectory.png"
        elif action.dest in ("rows", "hparams", "epochs"):
            action.help = argparse.SUPPRESS
    p.add_argument("--objective", choices=hpo.OBJECTIVES, default="one-shot",
                   help="one-shot: supernet validation PSNR after the search; arch: PSNR of the "
                        "retrained architecture (search + retraining: twice the epochs)")
    p.add_argument("--sampler", choices=("random", "tpe"), default=None,
                   help="proposals: random (Hyperband) or tpe (BOHB-style, needs optuna: "
                        'pip install "dasjax[hpo]"); default: tpe when optuna is installed, else random')
    p.add_argument("--iterations", type=int, default=None,
                   help="Hyperband iterations = brackets (paper: 128); default per preset "
                        + str({k: v["iterations"] for k, v in HPO_PRESETS.items()}))
    p.add_argument("--max-budget", type=float, default=None,
                   help="largest budget in epochs; default per preset "
                        + str({k: v["max_budget"] for k, v in HPO_PRESETS.items()}))
    p.add_argument("--min-budget", type=float, default=None, help="smallest budget (default: max budget / 9)")
    p.add_argument("--eta", type=float, default=3.0, help="Hyperband's eta: keep the best 1/eta per rung")
    p.add_argument("--random-fraction", type=float, default=1 / 3,
                   help="TPE sampler: fraction of proposals drawn at random (BOHB's default 1/3)")
    p.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                   help="pin a hyperparameter instead of searching it, e.g. --fix theta_lr=0.0014 "
                        "--fix alpha_optimizer=adam")
    return p


def _fixed_values(items, space: hpo.SearchSpace) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--fix {item!r} must look like NAME=VALUE")
        k, v = (t.strip() for t in item.split("=", 1))
        value = _parse_value(v)
        if k in space.params and isinstance(space.params[k], hpo.LogUniform) and isinstance(value, int) \
                and not isinstance(value, bool):
            value = float(value)
        if k == "alpha_optimizer" or k == "theta_optimizer":
            value = {"gradient descent": "sgd"}.get(str(value).lower(), str(value).lower())
        out[k] = value
    try:
        return space.fix(**out).fixed if out else {}
    except ValueError as e:
        raise UsageError(f"--fix: {e}") from None


def main(argv=None) -> int:
    args = build_hpo_parser().parse_args(argv)
    if args.epochs is not None:
        raise UsageError("--epochs: the budget is the number of epochs; use --max-budget (and --min-budget)")
    if args.hparams != DEFAULT_HPARAMS:
        raise UsageError("--hparams: dasjax hpo searches the hyperparameters; pin some with --fix NAME=VALUE")
    preset, overrides, _, rows, problems, _, out_arg = resolve(args, "hpo", ROWS)
    if args.adaptive:
        raise UsageError("--target-ci: HPO evaluations run a fixed budget of trials (--trials); "
                         "adaptive runs are for the table runners")
    if len(problems) != 1:
        raise UsageError(f"--problems: tune on one problem per run (the paper tuned blur and "
                         f"downsampling separately), got {problems}")
    if len(rows) != 1:
        raise UsageError(f"--op-sets: tune with one operation set per run, got {[r.op_set for r in rows]}")
    problem, op_set = problems[0], rows[0].op_set
    settings = dict(HPO_PRESETS[preset])
    if args.iterations is not None:
        settings["iterations"] = args.iterations
    if args.max_budget is not None:
        settings["max_budget"] = args.max_budget
    if settings["iterations"] < 1:
        raise UsageError(f"--iterations={settings['iterations']} must be a positive integer")
    if not 0 <= args.random_fraction <= 1:
        raise UsageError(f"--random-fraction={args.random_fraction} must be in [0, 1]")
    try:
        schedule = hpo.hyperband_schedule(settings["max_budget"], args.eta, args.min_budget)
    except ValueError as e:
        raise UsageError(f"--max-budget / --min-budget / --eta: {e}") from None
    space = hpo.SearchSpace()
    fixed = _fixed_values(args.fix, space)
    space = space.fix(**fixed) if fixed else space
    sampler = args.sampler or ("tpe" if hpo.optuna_available() else "random")
    if sampler == "tpe" and not hpo.optuna_available():
        raise UsageError(f"--sampler tpe: {hpo.INSTALL_HINT}")
    out = Path(args.out or f"results/hpo-{args.objective}-{problem}-{preset}")

    cfg = make_config(problem=problem, op_set=op_set, **overrides)
    # everything that changes results except the iteration count: a rerun with more iterations
    # continues (the first k iterations are the same for any total)
    fp = {"table": "hpo", "preset": preset, "problem": problem, "op_set": op_set,
          "objective": args.objective, "sampler": sampler, "seed": args.seed, "trials": args.trials,
          "max_budget": settings["max_budget"], "min_budget": args.min_budget, "eta": args.eta,
          "random_fraction": args.random_fraction if sampler == "tpe" else None, "fixed": fixed,
          "config": json.loads(json.dumps(cfg.science_dict(), default=list))}
    marker = out / "run.json"
    # compared as check_out_dir does: a folder saved before a config field existed or moved still matches
    same_run = marker.exists() and \
        _normalized(json.loads(marker.read_text())) == _normalized(json.loads(json.dumps(fp)))
    check_out_dir(out, fp, args.overwrite)
    previous = None
    if same_run and (out / "evaluations.csv").exists():
        import pandas as pd
        previous = pd.read_csv(out / "evaluations.csv", keep_default_na=False, na_values=[""])
    elif (out / "evaluations.csv").exists() and reports_here():   # --overwrite of another configuration
        (out / "evaluations.csv").unlink()
        (out / STUDY_FILE).unlink(missing_ok=True)

    source = "" if args.sampler else \
        f" (no --sampler: optuna is {'installed' if sampler == 'tpe' else 'not installed'})"
    say(f"[hpo] preset '{preset}', {problem} / {op_set} ops, objective {args.objective}, sampler {sampler}"
          f"{source}, {settings['iterations']} iterations, eta {args.eta:g}, "
          f"{args.trials} trial(s) per configuration; {env_summary()}")
    for b in schedule:
        say(f"[hpo] bracket s={b.s}: " + ", ".join(f"{r.n_configs} x {r.epochs} epochs" for r in b.rungs))
    if fixed:
        say(f"[hpo] fixed: {fixed}")
    say(f"[hpo] writing to {out}/" + (f" (reusing {len(previous)} earlier evaluations)" if previous is not None
                                       else ""))

    name = f"HPO-{args.objective}-{problem}-{op_set}"

    def save_rows(df):              # after every rung; one process writes (every process has every row)
        if reports_here():
            atomic_write_text(out / "evaluations.csv", df.to_csv(index=False))
            if hpo.optuna_available():      # the same rows as an Optuna study (dasjax.optuna_study)
                write_study(df, space, out / STUDY_FILE, name)

    t0 = time.perf_counter()
    res = hpo.tune(cfg, args.objective, iterations=settings["iterations"], max_budget=settings["max_budget"],
                   eta=args.eta, min_budget=args.min_budget, sampler=sampler, seed=args.seed,
                   trials=args.trials, space=space, name=name, progress=sys.stderr.isatty() and reports_here(),
                   previous=previous, on_rung=save_rows, log=print,
                   sampler_kw={"random_fraction": args.random_fraction} if sampler == "tpe" else None)
    elapsed = time.perf_counter() - t0
    if not reports_here():
        return 0 if res.incumbent is not None else 1
    save_rows(res.evaluations)
    atomic_write_text(out / "trajectory.csv", res.trajectory.to_csv(index=False))
    atomic_write_text(out / "config.json", json.dumps(
        {"run": fp, "iterations": settings["iterations"], "config": cfg.to_dict(),
         "schedule": [{"s": b.s, "rungs": [vars(r) for r in b.rungs]} for b in schedule],
         "search_space": {k: vars(d) for k, d in space.params.items()},
         "measured": {"elapsed_s": elapsed, "evaluations": len(res.evaluations),
                      "trial_epochs": int(res.evaluations["trial_epochs"].sum())},
         "env": env_summary(), "dasjax_version": __version__}, indent=2, sort_keys=True, default=str))
    if not args.no_figures:
        from analysis import hyperband_figure, save_figure
        title = f"Hyperband ({sampler}), {args.objective} objective, {problem} / {op_set} ops"
        xlabel = "cumulative budget used [epochs x trials" + \
            (", search + retraining]" if args.objective == "arch" else "]")
        save_figure(hyperband_figure(res.trajectory, title, xlabel), out / "figures" / "trajectory.png")
    if res.incumbent is None:
        say(f"\n[hpo] every configuration diverged: no incumbent ({len(res.evaluations)} evaluations, "
              f"{elapsed:.1f}s); see {out}/evaluations.csv")
        return 1
    atomic_write_text(out / "incumbent.json", res.incumbent.to_json() + "\n")
    r = res.incumbent_row
    say(f"\n[hpo] incumbent: configuration {r['config_id']} ({r['proposal']}), objective "
          f"{r['objective']:.3f} dB at {r['epochs']} epochs; {len(res.evaluations)} evaluations, "
          f"{int(res.evaluations['trial_epochs'].sum())} trial-epochs, {elapsed:.1f}s")
    say(res.incumbent.to_json())
    say(f"[hpo] results in {out}/ (incumbent.json, evaluations.csv, trajectory.csv, figures/"
        + (f", {STUDY_FILE}: an Optuna study named {name!r}" if (out / STUDY_FILE).exists() else "") + "); use with\n"
          f"      dasjax table1 --hparams {out / 'incumbent.json'}\n"
          f"  or, against the paper's H1 set over many seeds,\n"
          f"      dasjax table3 --sets H1,{out / 'incumbent.json'} "
          f"--problems {problem} --op-sets {op_set}")
    return 0


if __name__ == "__main__":
    sys.exit(main_guard(main))
