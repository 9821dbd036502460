#!/usr/bin/env python
"""Throughput of batched trials vs a Python loop over single-trial calls (issue #5).

For the full-scale supernet (width 64, 10 layers, all four ops, batch 128) it measures
trial-steps per second of one epoch (19 steps) of

* ``search``   first-order DAS step (alpha step + theta step),
* ``search2``  second-order DAS step,
* ``retrain``  retraining step of a discrete architecture,

for each T: the batched program as the runner runs it (chunks of trials, one call per chunk, the
chunks one after another; a chunk's trials sharded over all local devices, each device running
``trials_at_once`` trials at a time, vmapped, and its other trials one after another in the same
program; on a CPU, ``import dasjax`` makes one device per core, and a chunk is one trial per
device), and a Python loop over T single-trial jitted calls on one device (the baseline a user
would write), measured interleaved in the same process.  It reports compile times and XLA's own
memory estimate (``compiled.memory_analysis()``) and can write CSV.

    python benchmarks/trials.py                          # T in 1, 8, 32, 75; all stages
    python benchmarks/trials.py --trials 1,8 --stages search,retrain --csv out.csv
    python benchmarks/trials.py --trials 1 --f-backward fused,fused_f,autodiff   # F's backward passes
    python benchmarks/trials.py --trials 8 --f-block-rows 0,auto         # fused F with / without row blocks
    DASJAX_CPU_DEVICES=1 python benchmarks/trials.py --at-once all       # on a CPU: one vmap on one device
    python benchmarks/trials.py --trials 8 --chunk runner,75             # a CPU chunk per device vs one lax.map
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import dasjax  # noqa: E402
from dasjax.batch import resolve_devices  # noqa: E402
from dasjax.plan import plan_for  # noqa: E402
from dasjax.results import atomic_write_text  # noqa: E402
from dasjax.runners.estimate import build, epoch_time, runner_layout  # noqa: E402  (one place: dasjax all's estimate uses them)


_SINGLE: dict = {}


def measure(stage, cfg, T, reps, n_devices=None, at_once="runner", chunk=None):
    """One row: T trials batched as the runner runs them vs the loop.

    The batched column runs ``chunk`` trials per call of one compiled program (None: the runner's
    :func:`dasjax.batch.default_chunk_size`; on a CPU one trial per device, on an accelerator all
    T), the calls one after another as the runner makes them; a chunk is padded to a multiple of
    ``n_devices`` and the last one with copies, and only T trials count.
    n_devices None and at_once "runner": as the runner chooses (every local device; per backend);
    at_once None: one vmap over each device's trials of a chunk."""
    steps = cfg.search.steps_per_epoch
    n_devices, at_once, chunk = runner_layout(T, n_devices, at_once, chunk)
    n_calls = -(-T // chunk)
    batched, bkeys, bhp, bin_ = build(stage, cfg, chunk, n_devices, at_once)
    if (stage, cfg) not in _SINGLE:             # one single-trial program per stage and config, for every T
        _SINGLE[stage, cfg] = build(stage, cfg, 1)
    single, skeys, shp, sin_ = _SINGLE[stage, cfg]
    bstates = [batched.init(bkeys, bhp, *bin_) for _ in range(n_calls)]
    sstates = [single.init(skeys, shp, *sin_) for _ in range(T)]
    # warm up both (first calls allocate)
    _, bstates[0] = epoch_time(batched, bstates[0], bkeys, bhp, 1)
    _, sstates[0] = epoch_time(single, sstates[0], skeys, shp, 1)
    b_times, l_times = [], []
    for _ in range(reps):                       # interleaved: batched, then the loop, repeatedly
        t0 = time.perf_counter()
        for i in range(n_calls):                # the runner waits for each call's metrics
            bstates[i], m = batched.epochs(bstates[i], bkeys, bhp)
            jax.block_until_ready((bstates[i], m))
        b_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for i in range(T):
            sstates[i], _ = single.epochs(sstates[i], skeys, shp)
        jax.block_until_ready(sstates)
        l_times.append(time.perf_counter() - t0)
    tb, tl = float(np.median(b_times)), float(np.median(l_times))
    mem = batched.memory.get("peak_estimate_bytes", 0)
    return {"stage": stage, "T": T, "width": cfg.space.width, "op_set": cfg.space.op_set_name,
            "batched_trial_steps_per_s": T * steps / tb, "loop_trial_steps_per_s": T * steps / tl,
            "ratio_batched_over_loop": tl / tb, "batched_ms_per_trial_step": 1e3 * tb / (T * steps),
            "loop_ms_per_trial_step": 1e3 * tl / (T * steps),
            "compile_batched_s": batched.compile_time_s, "compile_single_s": single.compile_time_s,
            "xla_peak_estimate_MiB": mem / 2 ** 20, "xla_temp_MiB": batched.memory.get("temp_size_in_bytes", 0) / 2 ** 20,
            "devices": n_devices, "trials_at_once": batched.at_once or chunk // n_devices, "chunk": chunk,
            "calls_per_epoch": n_calls, "padded_T": chunk * n_calls}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--trials", default="1,8,32,75")
    ap.add_argument("--stages", default="search,retrain,search2")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--op-set", default="all")
    ap.add_argument("--space", default="sequential")
    ap.add_argument("--problem", default="blur",
                    help="blur | downsampling | image_denoise | image_blur (2D: 40x40 crops of the images "
                         "in $DASJAX_BSDS300, else the embedded sample images)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--devices", type=int, default=None,
                    help="shard the batched trials over this many local devices (default: all, as the runner; "
                         "T is padded to a multiple, the padding not counted)")
    ap.add_argument("--at-once", default=None,
                    help="trials each device runs at a time (vmapped), or 'all' (one vmap); "
                         "default: as the runner (CPU 1, accelerators all)")
    ap.add_argument("--chunk", default=None,
                    help="trials per call of the batched program, or a comma list measured one after another "
                         "(default: as the runner; CPU: one trial per device, accelerators: all T)")
    ap.add_argument("--precision", default="float32", help="matmul_precision (float32 | tensorfloat32 | ...)")
    ap.add_argument("--f-backward", default="auto",
                    help="RunConfig.f_backward (auto | fused | fused_f | autodiff), or a comma list measured one "
                         "after another; the table's 'backward b/l' column gives what the batched program and the "
                         "loop used")
    ap.add_argument("--f-block-rows", default="auto",
                    help="RunConfig.f_block_rows (auto | 0 = no blocks | N), or a comma list measured one after "
                         "another; the table's 'rows b/l' column gives what the batched program and the loop used")
    ap.add_argument("--csv", default=None, help="write the table here (rewritten after every row)")
    args = ap.parse_args(argv)
    cfgs = {(fb, br): dasjax.make_config(width=args.width, op_set=args.op_set, space=args.space, progress=False,
                                           matmul_precision=args.precision, problem=args.problem, f_backward=fb,
                                           f_block_rows=br if br == "auto" else int(br))
            for fb in args.f_backward.split(",") for br in args.f_block_rows.split(",")}
    cfg = next(iter(cfgs.values()))
    at_once = "runner" if args.at_once is None else None if args.at_once == "all" else int(args.at_once)
    chunks = ["runner"] if args.chunk is None else args.chunk.split(",")
    d = jax.devices()[0]
    print(f"backend {jax.default_backend()}, device {d.device_kind} x {jax.local_device_count()}, "
          f"jax {jax.__version__}, {os.cpu_count()} CPU cores, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}, "
          f"DASJAX_CPU_DEVICES={os.environ.get('DASJAX_CPU_DEVICES', 'auto')!r}")
    print(f"problem {args.problem}, space {args.space}, width {args.width}, {cfg.space.n_layers} layers, "
          f"op set {args.op_set}, "
          f"batch {cfg.search.batch_size}, one epoch = {cfg.search.steps_per_epoch} steps, "
          f"matmul precision {args.precision}")
    rows = []
    hdr = f"{'stage':8s} {'T':>4s} {'backward b/l':>16s} {'rows b/l':>9s} {'dev':>3s} {'at once':>7s} {'chunk':>5s} {'batched st/s':>13s} {'loop st/s':>10s} {'ratio':>6s} " \
          f"{'compile s':>9s} {'XLA peak MiB':>12s}"
    print(hdr)
    for stage in args.stages.split(","):
        for T in [int(t) for t in args.trials.split(",")]:
            n_dev = resolve_devices(args.devices, T)
            for ((fb, br), c), ch in itertools.product(cfgs.items(), chunks):
                r = measure(stage, c, T, args.reps, n_dev, at_once, None if ch == "runner" else int(ch))
                batched_plan, loop_plan = plan_for(c, n_dev), plan_for(c, 1)   # as the two programs were built
                rows_b, fb_b = batched_plan.f_block_rows, batched_plan.f_backward
                r.update(problem=args.problem, space=args.space, precision=args.precision, f_backward_setting=fb,
                         f_backward=fb_b, f_backward_loop=loop_plan.f_backward,
                         f_block_rows=rows_b, f_block_rows_loop=loop_plan.f_block_rows,
                         backend=jax.default_backend(), device=d.device_kind)
                rows.append(r)
                print(f"{stage:8s} {T:4d} {fb_b + '/' + r['f_backward_loop']:>16s} {rows_b:>4d}/{r['f_block_rows_loop']:<4d} {n_dev:3d} "
                      f"{r['trials_at_once']:7d} {r['chunk']:5d} "
                      f"{r['batched_trial_steps_per_s']:13.1f} "
                      f"{r['loop_trial_steps_per_s']:10.1f} "
                      f"{r['ratio_batched_over_loop']:6.2f} {r['compile_batched_s']:9.1f} "
                      f"{r['xla_peak_estimate_MiB']:12.0f}", flush=True)
                if args.csv:
                    atomic_write_text(args.csv, pd.DataFrame(rows).to_csv(index=False))
    if args.csv:
        print(f"wrote {args.csv}")


if __name__ == "__main__":
    main()
