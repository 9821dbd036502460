#!/usr/bin/env python
"""Overhead of lambda_max tracking (issue #10) as a fraction of search time.

For the full-scale supernet (width 64, 10 layers, batch 128, 19 steps per epoch) it times one epoch
call of

* ``plain``          the DAS search epoch without curvature (curvature_every = 0),
* ``lanczos`` / ``exact`` / ``power``  the same epoch plus one lambda_max estimate (curvature_every
                     = 1) by curvature_iters (20) Lanczos steps, the exact Hessian (layers x (ops - 1)
                     HVPs + eigvalsh) or shifted power iteration (2 (curvature_iters + 1) HVPs),
* ``es``             the DARTS-ES epoch at curvature_every = 1 with the default estimator (estimate +
                     snapshot + rule; DARTS-ADA runs the same per-epoch work),
* ``retrain``        one retraining epoch (to state the overhead against a whole DAS trial too),

interleaved over ``--reps`` repetitions (median), T trials per call (default 1: the CPU runner's
chunk).  One estimate costs ``t_curv - t_plain``; tracking every k epochs adds
``(t_curv - t_plain) / (k t_plain)`` to the search time and ``(t_curv - t_plain) / (k (t_plain +
t_retrain))`` to a DAS trial (search + retraining, both 50 epochs).

    python benchmarks/curvature_overhead.py                       # all ops, T = 1, intervals 1, 2, 5
    python benchmarks/curvature_overhead.py --op-set good --reps 7 --csv docs/curvature_overhead.csv
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import dasjax  # noqa: E402
import trials  # noqa: E402  (benchmarks/trials.py: the programs it times)
from dasjax.curvature import curvature_dimension  # noqa: E402
from dasjax.results import atomic_write_text  # noqa: E402
from dasjax.spaces import make_space  # noqa: E402

VARIANTS = {"plain": dict(curvature_every=0),
            "lanczos": dict(curvature_every=1, curvature_method="lanczos"),
            "exact": dict(curvature_every=1, curvature_method="exact"),
            "power": dict(curvature_every=1, curvature_method="power"),
            "es": dict(curvature_every=1, early_stop="es"), "retrain": dict()}


def build(name, cfg, T):
    """(compiled one-epoch program, state, keys, hparams) of one variant for T trials."""
    stage = "retrain" if name == "retrain" else "search"
    comp, keys, hp, inputs = trials.build(stage, cfg.replace(**VARIANTS[name]), T)
    return comp, comp.init(keys, hp, *inputs), keys, hp


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--op-set", default="all")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--trials", type=int, default=1, help="trials per call (vmapped)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--intervals", default="1,2,5", help="curvature_every values to state the overhead for")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--csv", default=None)
    args = ap.parse_args(argv)
    cfg = dasjax.make_config(width=args.width, op_set=args.op_set, progress=False)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    for must in ("plain", "retrain"):
        if must not in names:
            names.insert(0, must)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        ap.error(f"--variants: unknown {unknown}; choose from {list(VARIANTS)}")
    d = jax.devices()[0]
    space = make_space(cfg, dasjax.make_problem(cfg.problem))
    n_alpha = int(np.prod(space.arch_shape))
    print(f"backend {jax.default_backend()}, device {d.device_kind}, jax {jax.__version__}, {os.cpu_count()} CPU cores")
    print(f"width {args.width}, {cfg.space.n_layers} layers, op set {args.op_set} ({n_alpha} alphas, {curvature_dimension(space.arch_shape)} without the row-constant null directions), batch "
          f"{cfg.search.batch_size}, {cfg.search.steps_per_epoch} steps per epoch, T = {args.trials}; "
          f"curvature_iters {cfg.search.curvature_iters} (Lanczos steps; power: x 2 passes)")
    progs = {}
    for n in names:
        t = time.perf_counter()
        progs[n] = list(build(n, cfg, args.trials))
        print(f"  compiled {n:8s} in {time.perf_counter() - t:5.1f}s", flush=True)
    times = {n: [] for n in names}
    for r in range(args.reps + 1):                 # rep 0 warms up; then interleaved
        for n in names:
            comp, state, keys, hp = progs[n]
            t = time.perf_counter()
            state, m = comp.epochs(state, keys, hp, 0)
            jax.block_until_ready((state, m))
            progs[n][1] = state
            if r:
                times[n].append(time.perf_counter() - t)
    med = {n: float(np.median(v)) for n, v in times.items()}
    t0, tr = med["plain"], med["retrain"]
    print(f"\nmedian of {args.reps} epoch calls: " + ", ".join(f"{n} {med[n]:.3f}s" for n in names))
    rows = []
    intervals = [int(k) for k in args.intervals.split(",")]
    for n in names:
        if n in ("plain", "retrain"):
            continue
        est = med[n] - t0
        for k in intervals if n != "es" else [1]:
            rows.append({"variant": n, "op_set": args.op_set, "width": args.width, "T": args.trials,
                         "curvature_every": k, "epoch_plain_s": t0, "epoch_with_estimate_s": med[n],
                         "estimate_s": est, "estimate_in_epochs": est / t0,
                         "search_overhead": est / (k * t0), "trial_overhead": est / (k * (t0 + tr)),
                         "retrain_epoch_s": tr, "backend": jax.default_backend(), "device": d.device_kind})
    print(f"\n{'variant':8s} {'every':>5s} {'estimate s':>10s} {'= epochs':>8s} {'+search':>8s} {'+trial':>7s}")
    for r in rows:
        print(f"{r['variant']:8s} {r['curvature_every']:5d} {r['estimate_s']:10.3f} {r['estimate_in_epochs']:8.2f} "
              f"{100 * r['search_overhead']:7.0f}% {100 * r['trial_overhead']:6.0f}%")
    if args.csv:
        atomic_write_text(args.csv, pd.DataFrame(rows).to_csv(index=False))
        print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
