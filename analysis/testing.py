"""Write small synthetic results folders in the engine's format.

For tests, documentation examples and trying the analysis without running a
search. The format is the contract of analysis.load (trials.csv, config.json,
arrays.npz); the numbers are random and mean nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .load import ARRAYS_FILE, CONFIG_FILE, TRIALS_FILE

DAS_LIKE = ("DAS", "DAS-single", "DAS-ES", "DAS-ADA")
GOOD_OPS = ("lg", "net")
ALL_OPS = ("lg", "net", "roll", "noise")
FIXED_OPS = {"Learnable Grad. only": "lg", "Nets only": "net"}


def write_results_dir(
    path: os.PathLike | str,
    trials: pd.DataFrame,
    config: Mapping | None = None,
    arrays: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Write `trials` (one row per trial) as a results folder and return its path.

    `arrays` maps "{trial_id}/{name}" to arrays, saved as arrays.npz.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    trials.to_csv(folder / TRIALS_FILE, index=False)
    with open(folder / CONFIG_FILE, "w") as f:
        json.dump(dict(config or {}), f, indent=2)
    if arrays:
        np.savez(folder / ARRAYS_FILE, **arrays)
    return folder


def synthetic_trials(
    n_trials: int = 8,
    problems: Sequence[str] = ("blur", "downsampling"),
    op_sets: Sequence[str] = ("good", "all"),
    methods: Sequence[str] = ("DAS", "Random Sampling"),
    hparams: str = "H1",
    experiment: str = "table1",
    space: str = "sequential",
    layers: int = 10,
    epochs: int = 5,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Random trials and their arrays, in the results format.

    space="sequential": `layers` layers, architecture "lg-net-...". space="cell":
    5 states, 15 edges "j>i:op" with the extra "zero" op (`layers` is ignored).
    DAS-like methods get a one-shot PSNR, α (final softmax and a history) and
    loss curves; the others get NaN one-shot PSNR and empty α.
    """
    if space not in ("sequential", "cell"):
        raise ValueError(f"space must be 'sequential' or 'cell', got {space!r}")
    edges = [(j, i) for i in range(1, 6) for j in range(i)]
    if space == "cell":
        layers = len(edges)
    rng = np.random.default_rng(seed)
    rows, arrays = [], {}
    for problem in problems:
        for op_set in op_sets:
            ops = list(GOOD_OPS if op_set == "good" else ALL_OPS) + (["zero"] if space == "cell" else [])
            for method in methods:
                for s in range(n_trials):
                    trial_id = f"{experiment}/{problem}/{op_set}/{method}/{hparams}/s{s}"
                    logits = rng.normal(size=(epochs, layers, len(ops))).cumsum(axis=0)
                    history = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
                    das = method in DAS_LIKE
                    fixed = FIXED_OPS.get(method)
                    if das:
                        choice = history[-1].argmax(-1)
                    elif fixed:
                        choice = np.full(layers, ops.index(fixed))
                    else:
                        choice = rng.integers(len(ops), size=layers)
                    one_shot = rng.normal(18.0, 3.0)
                    rows.append({
                        "trial_id": trial_id, "experiment": experiment, "space": space,
                        "problem": problem, "op_set": op_set, "method": method, "hparams": hparams,
                        "seed": s,
                        "one_shot_psnr": one_shot if das else float("nan"),
                        "arch_psnr": 0.5 * one_shot + rng.normal(10.0, 1.0),
                        "architecture": _architecture(space, [ops[i] for i in choice], edges),
                        "alpha_softmax": json.dumps(history[-1].round(4).tolist()) if das else "",
                        "ops": json.dumps(ops), "diverged": False, "wall_time_s": 1.0,
                    })
                    arrays[f"{trial_id}/retrain_val_loss"] = rng.random(epochs)
                    if das:
                        arrays[f"{trial_id}/alpha_history"] = history
                        arrays[f"{trial_id}/search_val_loss"] = rng.random(epochs)
    return pd.DataFrame(rows), arrays


def _architecture(space: str, chosen: Sequence[str], edges: Sequence[tuple[int, int]]) -> str:
    """The architecture string of the results format for the chosen op per layer/edge."""
    if space == "cell":
        return ";".join(f"{j}>{i}:{op}" for (j, i), op in zip(edges, chosen))
    return "-".join(chosen)
