"""Display names, colours and the paper's row orders.

Kept in one place so tables and figures agree on how a group is named and
sorted. Unknown values (a new method, problem or op) are never an error: they
sort after the known ones, in order of first appearance, and get a fallback
colour.
"""

from __future__ import annotations

from typing import Hashable, Iterable, Sequence

import pandas as pd

# The order of rows and panels in the paper (Table 1, Table 3, Figs. 3-6).
ORDERS: dict[str, tuple[str, ...]] = {
    "problem": ("blur", "downsampling", "image_denoise", "image_blur"),
    "op_set": ("good", "all"),
    "method": (
        "Learnable Grad. only",
        "Nets only",
        "DAS",
        "DAS-single",
        "DAS-ES",
        "DAS-ADA",
        "Random Sampling",
        "Random Search",
    ),
    "hparams": (
        "H1",
        "H2",
        "BOHB-one-shot-Blur",
        "BOHB-one-shot-DS",
        "BOHB-Blur",
        "BOHB-Non-Seq-one-shot-Blur",
        "BOHB-Non-Seq-Blur",
        "BOHB-DAS-single",
    ),
    "space": ("sequential", "cell"),
}

PROBLEM_LABELS = {"blur": "Blur", "downsampling": "Downsampling", "bsds_denoise": "BSDS denoise",
                  "image_denoise": "Image denoising", "image_blur": "Image blur + noise"}
OP_SET_LABELS = {"good": "good ops.", "all": "all ops."}
OP_LABELS = {"lg": "Learn. Grad", "net": "Net", "roll": "Roll", "noise": "Noise", "zero": "Zero"}
OP_COLORS = {
    "lg": "#1f77b4",  # blue
    "net": "#ff7f0e",  # orange
    "roll": "#d62728",  # red
    "noise": "#9467bd",  # purple
    "zero": "#bbbbbb",  # grey
}
_FALLBACK_COLORS = ("#2ca02c", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
# Colours per group in scatter/box plots (good = blue, all = orange as in Fig. 3).
GROUP_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")

STAT_LABELS = {"max": "Max", "mean": "Mean", "median": "Med.", "min": "Min", "std": "Std"}


def label(column: str, value: Hashable) -> str:
    """Human-readable name of `value` in `column` (e.g. op_set "good" -> "good ops.")."""
    table = {"problem": PROBLEM_LABELS, "op_set": OP_SET_LABELS, "op": OP_LABELS}.get(column, {})
    return table.get(value, str(value))


def op_label(op: str, meta: dict | None = None) -> str:
    """Label of an op short name ("lg" -> "Learn. Grad"): from ``meta`` (a trial's parsed
    ``op_meta``) if it names the op, else the paper's, else the name itself."""
    if meta and op in meta and meta[op].get("label"):
        return str(meta[op]["label"])
    return OP_LABELS.get(op, op)


def op_color(op: str, meta: dict | None = None) -> str:
    """Fixed colour of an op, so every figure colours "net" the same way: from ``meta`` if it
    gives one, else the paper ops' colours, else a fallback derived from the name."""
    if meta and op in meta and meta[op].get("color"):
        return str(meta[op]["color"])
    if op in OP_COLORS:
        return OP_COLORS[op]
    return _FALLBACK_COLORS[sum(map(ord, op)) % len(_FALLBACK_COLORS)]


def sort_values(column: str, values: Iterable[Hashable]) -> list:
    """Unique values of `column` in the paper's order; unknown ones after, as first seen."""
    known = ORDERS.get(column, ())
    seen: list = []
    for v in values:
        if v not in seen:
            seen.append(v)
    rank = {v: i for i, v in enumerate(known)}
    return sorted(seen, key=lambda v: (rank.get(v, len(known)), seen.index(v)))


def sort_frame(df, columns: Sequence[str]):
    """Rows of `df` sorted by `columns` in the paper's order (stable, pure)."""
    if len(df) == 0 or not columns:
        return df
    keys = []
    for c in columns:
        order = {v: i for i, v in enumerate(sort_values(c, df[c].tolist()))}
        keys.append(df[c].map(order))
    key_frame = pd.DataFrame({f"_k{i}": k.to_numpy() for i, k in enumerate(keys)}, index=df.index)
    order_idx = key_frame.sort_values(list(key_frame.columns), kind="stable").index
    return df.loc[order_idx]
