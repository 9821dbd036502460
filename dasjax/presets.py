"""Named experiment presets: ``smoke`` (minutes on a 2-core CPU), ``cpu`` (full width and
epochs, trials sized to ~90 min per problem on the 2-core CPU), ``paper`` (75 trials, for a GPU).
Table 4 (2D images) adjusts them per table (:data:`TABLE_PRESETS`): 3 trials at ``paper``, and a
shortened run at ``cpu`` (a 2D step costs ~100 1D steps).

A preset is data: config overrides plus a trial count.  Command-line flags override single fields.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import jax


@dataclass(frozen=True)
class Preset:
    name: str
    trials: int
    overrides: dict = field(default_factory=dict)
    description: str = ""


PRESETS = {
    "smoke": Preset("smoke", trials=3,
                    overrides=dict(width=8, epochs=2, steps_per_epoch=4, batch_size=32, eval_batches=2,
                                   fast_compile=True),
                    description="every row with 3 trials, width 8, 2 short epochs: a pipeline check"),
    "cpu": Preset("cpu", trials=8, overrides=dict(),   # trials per table: CPU_TRIALS
                  description="full width 64 and 50 epochs; trials sized to ~90 min per problem on 2 CPU cores"),
    "paper": Preset("paper", trials=75, overrides=dict(),
                    description="the paper's scale: 75 trials, width 64, 50 epochs (meant for a GPU)"),
}

# Trials of the cpu preset per table, sized to ~90 min per problem on the 2-core CPU from the measured
# per-trial-step times (docs/results/bench_cpu_sequential.csv: ~50 ms per DAS step, ~18 ms per
# retraining step at width 64): one Table 1 trial of all 8 rows costs ~333 s per problem -> 15 trials.
# Measured since (docs/results/archive/table1_cpu_15trials): the 15 trials took 4121 s of row time on blur (1 h 9 min,
# partly shared with the test suite), i.e. ~275 s per trial of all 8 rows; 20 trials would take ~92 min.
# Table 3 (DAS only, 5 sets x 2 op sets, ~65 s each) -> 8; the cell space costs ~5x a sequential
# epoch (Table 2) -> 3.  Measured since (docs/results/table2_cpu): one Table 2 trial of all six rows
# costs ~630 s per problem alone (cell DAS search 170-190 s, cell retraining 45 s), so 3 trials take
# ~37 min per problem and ~75 min for the whole table (both problems).
# Curvature study, sized for ONE problem x op set (the blur / all ops):
# DAS, DAS-ES and DAS-ADA with lambda_max every 2 epochs, ~126 + 129 + 129 s per seed
# (benchmarks/curvature_overhead.py, docs/curvature.md) -> 13.
# Since the fused CNN backward pass (SpaceConfig.f_backward) the DAS rows run ~1.3x faster (blur DAS
# good ops, 15 trials: 755 s -> 587 s; the single-op rows unchanged, 173-176 s), so a blur Table 1
# run would take an estimated ~63 min (not run).  Spreading the trials over both cores (RunConfig.
# trials_at_once, one host device per core) shortened the rows again: Nets only 174 -> 141 s, DAS good
# ops 587 -> 526 s (docs/results/archive/table1_cpu_15trials, "Rerun on both cores"), and chunks of one trial per core
# (dasjax.batch.default_chunk_size) again: 71 s and 293 s ("Rerun with chunks").
# Table 1 was then rerun with 25 trials (docs/results/archive/table1_cpu_grad_detached, 2026-11-23): 2491 s
# of row time on blur and 2641 s on downsampling, i.e. ~100 s per trial of all 8 rows and problem,
# so 25 trials run both problems in ~85 min (50 would fill ~90 min per problem: `--trials 50`).
# The other counts stay as they are: their committed results were made with them.
CPU_TRIALS = {"table1": 25, "table2": 3, "table3": 8, "curvature": 13}

# Table 4 (2D images, paper §4.4): the paper ran 3 trials per row.  One 2D step moves 32x the pixels of a
# 1D step (128 crops of 40x40 vs 128 signals of 50) and costs 78-106x its time on the 2-core CPU
# (7.3 s per DAS step, 2.0 s per retraining step at batch 128, measured under load; docs/bsds.md).
# So the cpu preset keeps width 64 and the 40x40 crops but runs 10 epochs x 15 steps of 32 crops
# (~25 min for the 3 rows x 3 trials), and smoke shrinks the crops and evaluates on centre crops.
TABLE_PRESETS = {
    ("smoke", "table4"): dict(trials=2, overrides=dict(crop_size=16, eval_images="center_crop",
                                                       eval_crop_size=48)),
    ("cpu", "table4"): dict(trials=3, overrides=dict(epochs=10, steps_per_epoch=15, batch_size=32)),
    ("paper", "table4"): dict(trials=3, overrides=dict()),
}


def get_preset(name: str, table: str | None = None) -> Preset:
    """The preset ``name``, with the trial count and overrides it takes for ``table``."""
    if name not in PRESETS:
        raise ValueError(f"preset={name!r} is not allowed; choose one of {list(PRESETS)}")
    p = PRESETS[name]
    if name == "cpu" and table in CPU_TRIALS:
        p = Preset(p.name, CPU_TRIALS[table], p.overrides, p.description)
    if (name, table) in TABLE_PRESETS:
        t = TABLE_PRESETS[(name, table)]
        p = Preset(p.name, t["trials"], {**p.overrides, **t["overrides"]}, p.description)
    return p


def default_preset_name() -> tuple[str, str]:
    """'paper' when JAX sees a GPU, else 'smoke'; with the reason to print."""
    backend = jax.default_backend()
    if backend in ("gpu", "cuda", "rocm"):
        return "paper", f"JAX sees a GPU ({jax.devices()[0].device_kind})"
    return "smoke", f"JAX backend is {backend!r} (no GPU)"
