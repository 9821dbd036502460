"""Parse the string encodings of architectures and α stored in trials.csv.

Sequential space: op short names per layer joined by "-", e.g. "lg-net-net-roll".
Cell space: edges joined by ";", each "j>i:op" = an edge from node s_j into state
s_i carrying `op`; a "zero" edge means no edge.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import numpy as np
import pandas as pd


class Edge(NamedTuple):
    """One edge of a cell: s_source --op--> s_target."""

    source: int
    target: int
    op: str


def is_cell_architecture(architecture: str) -> bool:
    """True for the cell encoding ("0>1:net;..."), False for "lg-net-...". """
    return ">" in architecture and ":" in architecture


def parse_sequential(architecture: str) -> list[str]:
    """Op short name per layer, e.g. "lg-net-roll" -> ["lg", "net", "roll"]."""
    text = str(architecture).strip()
    if not text:
        raise ValueError("empty sequential architecture string")
    if is_cell_architecture(text):
        raise ValueError(f"{architecture!r} is a cell architecture, not a sequential one")
    return text.split("-")


def parse_cell(architecture: str) -> list[Edge]:
    """Edges of a cell, e.g. "0>1:net;1>2:lg" -> [Edge(0, 1, "net"), Edge(1, 2, "lg")]."""
    edges = []
    for part in str(architecture).strip().split(";"):
        part = part.strip()
        if not part:
            continue
        try:
            nodes, op = part.split(":", 1)
            source, target = (int(n) for n in nodes.split(">", 1))
        except ValueError as err:
            raise ValueError(
                f"bad cell edge {part!r} in {architecture!r}; expected 'j>i:op'"
            ) from err
        if not source < target:
            raise ValueError(f"cell edge {part!r} must go forward (j < i)")
        edges.append(Edge(source, target, op.strip()))
    if not edges:
        raise ValueError(f"no edges in cell architecture {architecture!r}")
    return edges


def architecture_ops(architecture: str) -> list[str]:
    """The op of each layer (sequential) or each edge (cell), in string order."""
    if is_cell_architecture(architecture):
        return [edge.op for edge in parse_cell(architecture)]
    return parse_sequential(architecture)


def parse_alpha(text: str | float | None) -> np.ndarray | None:
    """The final softmax(α) as a (layers, ops) array; None for "", "null" or NaN."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return None
    text = str(text).strip()
    if text in ("", "null", "None", "nan"):
        return None
    return np.asarray(json.loads(text), dtype=float)


def parse_ops(text: str | float | None) -> list[str]:
    """α's column order, e.g. '["lg","net"]' -> ["lg", "net"]; [] when absent."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return []
    text = str(text).strip()
    if text in ("", "null", "None", "nan"):
        return []
    ops = json.loads(text)
    if not isinstance(ops, list):
        raise ValueError(f"ops must be a JSON list, got {text!r}")
    return [str(op) for op in ops]


def parse_op_meta(text: str | float | None) -> dict[str, dict]:
    """The ``op_meta`` column: {op: {"label", "color", "preserves_zero"}}, as dasjax writes it for
    every op of a trial (so ops a user registered get their own labels); {} when absent."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return {}
    text = str(text).strip()
    if text in ("", "null", "None", "nan"):
        return {}
    meta = json.loads(text)
    if not isinstance(meta, dict):
        raise ValueError(f"op_meta must be a JSON object, got {text!r}")
    return meta


# Ops that map an all-zero state to an all-zero output (a state fed only through them stays zero);
# the paper's, for results folders written before op_meta existed.
ZERO_PRESERVING_OPS = frozenset({"zero", "roll"})
# Ops that run a CNN F (conv -> BatchNorm -> ReLU -> conv) on their input.
CNN_OPS = frozenset({"net", "lg"})
CELL_SEPARATOR = "|"


def cell_blocks(architecture: str) -> list[list[Edge]]:
    """The edges of each cell of a cell architecture ("... | ..." when each cell has its own α)."""
    return [parse_cell(part) for part in str(architecture).split(CELL_SEPARATOR)]


def dead_states(architecture: str) -> list[set[int]]:
    """Per cell, the states that are identically zero in the discrete cell.

    A state is dead when every edge into it is a zero edge or a zero-preserving op (roll)
    reading a dead state.  The cell input s_0 is never dead."""
    out = []
    for edges in cell_blocks(architecture):
        dead: set[int] = set()
        for target in sorted({e.target for e in edges}):
            incoming = [e for e in edges if e.target == target]
            if all(e.op == "zero" or (e.op in ZERO_PRESERVING_OPS and e.source in dead) for e in incoming):
                dead.add(target)
        out.append(dead)
    return out


def dead_state_readers(architecture: str) -> list[tuple[int, Edge]]:
    """(cell, edge) for every CNN op (net, lg) that reads a dead state.

    Such a CNN sees an all-zero input, so its first convolution outputs its bias alone and its
    BatchNorm has zero batch variance: the running variance decays towards 0 and eval mode
    divides the drift between the bias and the running mean by sqrt(eps)
    (``experiments/dead_state_bn.py``).  All degenerate cell trials of the archived cpu Table 2 run
    (docs/results/archive/table2_cpu_before_stage6, made before calibration stage 6) have such an
    edge, but most trials with one retrain normally: it is a risk, not a verdict."""
    out = []
    for cell, (edges, dead) in enumerate(zip(cell_blocks(architecture), dead_states(architecture))):
        out += [(cell, e) for e in edges if e.op in CNN_OPS and e.source in dead]
    return out


def dead_state_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per (problem, op_set, method, hparams) of the cell-space trials in ``df``: how many trials
    have a CNN op reading a dead state, and the median architecture PSNR with and without one."""
    cell = df[df["architecture"].astype(str).map(is_cell_architecture)]
    keys = [c for c in ("problem", "op_set", "method", "hparams") if c in cell.columns]
    columns = keys + ["n", "n_dead_readers", "median_with", "median_without", "min_with", "min_without"]
    if len(cell) == 0:
        return pd.DataFrame(columns=columns)
    has = cell["architecture"].astype(str).map(lambda a: len(dead_state_readers(a)) > 0)
    rows = []
    for key, group in cell.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        psnr = group["arch_psnr"].to_numpy(float)
        flag = has.loc[group.index].to_numpy(bool)

        def stat(f, mask):
            x = psnr[mask & np.isfinite(psnr)]
            return float(f(x)) if x.size else float("nan")

        rows.append(dict(zip(keys, key), n=len(group), n_dead_readers=int(flag.sum()),
                         median_with=stat(np.median, flag), median_without=stat(np.median, ~flag),
                         min_with=stat(np.min, flag), min_without=stat(np.min, ~flag)))
    return pd.DataFrame(rows, columns=columns)
