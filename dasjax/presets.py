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

# Trials of the cpu preset per table, sized to ~90 min per problem on the 2-core CPU from measured
# per-trial times; the measurements and their history: docs/performance.md, "Preset sizing".
CPU_TRIALS = {"table1": 25, "table2": 8, "table3": 8, "curvature": 13, "variants": 8}

# Table 4 (2D images, paper §4.4): 3 trials per row, as the paper ran; at cpu a shortened run (a 2D
# step costs ~100 1D steps; docs/performance.md, "Preset sizing").
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
