"""The time a planned run will take: seconds per trial-step of the DAS and retraining steps.

``dasjax all`` multiplies its planned trial-steps by these.  They come from the benchmark's
measurements (``python benchmarks/trials.py``, saved as ``docs/results/bench_<backend>*_sequential.csv``),
copied into the package as ``step_times.csv`` so an installed wheel has them too
(``python -m dasjax.runners.estimate --write`` refreshes the copy from a repository checkout; a test
checks the two agree).  A backend with no measurement is measured on the spot: one epoch of the
full-scale supernet, batched as the runner batches it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

STEP_TIMES = Path(__file__).with_name("step_times.csv")
STEP_TIME_COLUMNS = ["backend", "stage", "width", "ms_per_trial_step", "source"]


def benchmark_step_times(results: Path) -> pd.DataFrame:
    """The fastest batched ms per trial-step of each stage, per backend, from the benchmark CSVs in
    ``results``: for each backend the first ``bench_<backend>*_sequential.csv`` by name (on the CPU
    the current runner's layout, ``bench_cpu_chunks_sequential.csv``, sorts before the older ones)."""
    rows = []
    for backend in ("cpu", "gpu", "tpu"):
        found = sorted(results.glob(f"bench_{backend}*_sequential.csv"))
        if not found:
            continue
        d = pd.read_csv(found[0])
        # older CPU files ran one trial per chunk, so their loop column is the runner's time
        col = "loop_ms_per_trial_step" if "trials_at_once" not in d.columns and backend == "cpu" \
            else "batched_ms_per_trial_step"
        for stage in ("search", "retrain"):
            s = d[(d.stage == stage) & (d.width == 64)]
            rows.append({"backend": backend, "stage": stage, "width": 64,
                         "ms_per_trial_step": round(float(s[col].min()), 4), "source": found[0].name})
    return pd.DataFrame(rows, columns=STEP_TIME_COLUMNS)


def packaged_step_times() -> pd.DataFrame:
    return pd.read_csv(STEP_TIMES)


def build(stage: str, cfg, T: int, n_devices: int = 1, at_once=None):
    """(compiled program, keys, hp, inputs) for T trials of ``stage`` ("search", "search2" or
    "retrain"), the trial axis over ``n_devices``, ``at_once`` trials at a time per device."""
    import jax
    import dasjax
    from dasjax.api import make_search_program, resolve_hparams
    from dasjax.batch import trial_keys
    from dasjax.compiled import CompiledProgram
    from dasjax.spaces import make_space
    from dasjax.train import RetrainProgram
    problem = dasjax.make_problem(cfg.problem)
    hp, types, _ = resolve_hparams("H1", T)
    keys = trial_keys(range(T))
    if stage == "retrain":
        space = make_space(cfg, problem, share_f=cfg.retrain.share_f, n_devices=n_devices)
        archs = jax.numpy.asarray(dasjax.random_architectures(cfg, keys))
        comp = CompiledProgram(RetrainProgram(cfg, space, types), keys, hp, (archs,), 1, n_devices=n_devices,
                               at_once=at_once)
        return (comp, *comp.put((keys, hp, (archs,))))
    c = cfg.replace(order=2) if stage == "search2" else cfg
    space = make_space(c, problem, n_devices=n_devices)
    comp = CompiledProgram(make_search_program(c, space, types), keys, hp, (), 1, n_devices=n_devices,
                           at_once=at_once)
    return (comp, *comp.put((keys, hp, ())))


def epoch_time(comp, state, keys, hp, reps: int):
    """Best-of-``reps`` wall time of one epoch call (the state is donated: thread it through)."""
    import jax
    best = np.inf
    for _ in range(reps):
        t = time.perf_counter()
        state, _ = comp.epochs(state, keys, hp)
        jax.block_until_ready(state)
        best = min(best, time.perf_counter() - t)
    return best, state


def runner_layout(T: int, n_devices: int | None = None, at_once="runner", chunk: int | None = None):
    """(devices, trials at once per device, trials per call) for T trials as the runner lays them
    out: every local device, the backend's trials at once, :func:`dasjax.placement.default_chunk_size`
    trials per call, padded to a multiple of the devices.  Each may be pinned (``at_once`` None: one
    vmap over a device's trials)."""
    from dasjax.placement import default_trials_at_once, padded_chunk, resolve_devices
    if n_devices is None:
        n_devices = resolve_devices(None, T)
    if at_once == "runner":
        at_once = default_trials_at_once()
    return n_devices, at_once, padded_chunk(T, n_devices, at_once, chunk)


def measure_step_time(stage: str, cfg, T: int) -> float:
    """Seconds per trial-step of one epoch of ``stage`` for T trials, chunked and placed as the
    runner does it (the first epoch, which allocates, is not counted)."""
    n_devices, at_once, chunk = runner_layout(T)
    comp, keys, hp, inputs = build(stage, cfg, chunk, n_devices, at_once)
    state = comp.init(keys, hp, *inputs)
    _, state = epoch_time(comp, state, keys, hp, 1)
    seconds, _ = epoch_time(comp, state, keys, hp, 1)
    return seconds * (-(-T // chunk)) / (T * cfg.search.steps_per_epoch)


def step_times(width: int) -> tuple[float, float, str]:
    """(seconds per DAS trial-step, seconds per retraining trial-step, where they come from) at
    ``width`` on this backend."""
    import jax
    backend = jax.default_backend()
    backend = "gpu" if backend in ("cuda", "rocm") else backend
    table = packaged_step_times()
    mine = table[table.backend == backend]
    if len(mine):
        scale = width / 64              # the step is memory-bound: traffic grows with the width
        ms = {r.stage: r.ms_per_trial_step for r in mine.itertuples()}
        note = "" if width == 64 else f", scaled by width {width}/64"
        return (ms["search"] / 1e3 * scale, ms["retrain"] / 1e3 * scale,
                f"the benchmark's {mine.source.iloc[0]}{note}")
    import dasjax
    cfg = dasjax.make_config(width=width, op_set="all", progress=False)
    T = 2 * jax.local_device_count() if backend == "cpu" else 32
    return (measure_step_time("search", cfg, T), measure_step_time("retrain", cfg, T),
            f"measured now (T={T})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dasjax.runners.estimate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=Path("docs/results"),
                    help="the folder of the benchmark CSVs (default: docs/results)")
    ap.add_argument("--write", action="store_true", help=f"write them to {STEP_TIMES.name} in the package")
    args = ap.parse_args(argv)
    table = benchmark_step_times(args.results)
    if table.empty:
        print(f"error: no bench_*_sequential.csv in {args.results}", file=sys.stderr)
        return 2
    print(table.to_string(index=False))
    if args.write:
        table.to_csv(STEP_TIMES, index=False)
        print(f"written to {STEP_TIMES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
