"""Parse the string encodings of architectures and α stored in trials.csv.

Sequential space: op short names per layer joined by "-", e.g. "lg-net-net-roll".
Cell space: edges joined by ";", each "j>i:op" = an edge from node s_j into state
s_i carrying `op`; a "zero" edge means no edge.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import numpy as np


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


def parse_alpha(text) -> np.ndarray | None:
    """The final softmax(α) as a (layers, ops) array; None for "", "null" or NaN."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return None
    text = str(text).strip()
    if text in ("", "null", "None", "nan"):
        return None
    return np.asarray(json.loads(text), dtype=float)


def parse_ops(text) -> list[str]:
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
