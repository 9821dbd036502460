"""Named experiment presets: ``smoke`` (minutes on a 2-core CPU), ``cpu`` (full width and
epochs, trials sized to ~90 min per problem on the 2-core CPU), ``paper`` (75 trials, for a GPU).
Each adjusts itself per table (``Preset.tables``): Table 4 (2D images) runs 3 trials at ``paper``,
and a shortened run at ``cpu`` (a 2D step costs ~100 1D steps).

A preset is data: config overrides plus a trial count, in a :class:`dasjax.registry.Registry`
(:func:`register_preset` adds one).  Command-line flags override single fields.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import jax

from .registry import Registry


@dataclass(frozen=True)
class Preset:
    """Config overrides and a trial count; ``tables`` adjusts them per table: {table: {"trials": n,
    "overrides": {...}}} (either key may be left out)."""
    name: str
    trials: int
    overrides: dict = field(default_factory=dict)
    description: str = ""
    tables: dict = field(default_factory=dict)

    def for_table(self, table: str | None) -> "Preset":
        """This preset with the trial count and overrides it takes for ``table``."""
        t = self.tables.get(table, {})
        return Preset(self.name, t.get("trials", self.trials), {**self.overrides, **t.get("overrides", {})},
                      self.description)


PRESETS = Registry("preset", "dasjax.presets.register_preset")


def register_preset(preset: Preset, replace: bool = False) -> Preset:
    """Add ``preset`` so that ``--preset NAME`` finds it (``replace=True`` to redefine a name)."""
    return PRESETS.register(preset, Preset, replace=replace)


# Table 4 (2D images, paper §4.4): 3 trials per row, as the paper ran; at cpu a shortened run (a 2D
# step costs ~100 1D steps; docs/performance.md, "Preset sizing").
_SMOKE_TABLE4 = dict(trials=2, overrides=dict(crop_size=16, eval_images="center_crop", eval_crop_size=48))
# The cpu preset's trials per table, sized to ~90 min per problem on the 2-core CPU from measured
# per-trial times; the measurements and their history: docs/performance.md, "Preset sizing".
CPU_TRIALS = {"table1": 25, "table2": 8, "table3": 8, "curvature": 13, "variants": 8}

for _preset in (
    Preset("smoke", trials=3,
           overrides=dict(width=8, epochs=2, steps_per_epoch=4, batch_size=32, eval_batches=2, fast_compile=True),
           description="every row with 3 trials, width 8, 2 short epochs: a pipeline check",
           tables={"table4": _SMOKE_TABLE4}),
    Preset("cpu", trials=8,
           description="full width 64 and 50 epochs; trials sized to ~90 min per problem on 2 CPU cores",
           tables={**{t: dict(trials=n) for t, n in CPU_TRIALS.items()},
                   "table4": dict(trials=3, overrides=dict(epochs=10, steps_per_epoch=15, batch_size=32))}),
    Preset("paper", trials=75, description="the paper's scale: 75 trials, width 64, 50 epochs (meant for a GPU)",
           tables={"table4": dict(trials=3)}),
):
    PRESETS.add(_preset.name, _preset, builtin=True)


def get_preset(name: str, table: str | None = None) -> Preset:
    """The preset ``name``, with the trial count and overrides it takes for ``table``."""
    return PRESETS.get(name).for_table(table)


def default_preset_name() -> tuple[str, str]:
    """'paper' when JAX sees a GPU, else 'smoke'; with the reason to print."""
    backend = jax.default_backend()
    if backend in ("gpu", "cuda", "rocm"):
        return "paper", f"JAX sees a GPU ({jax.devices()[0].device_kind})"
    return "smoke", f"JAX backend is {backend!r} (no GPU)"
