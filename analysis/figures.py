"""Figures of the paper's kind, from the trials DataFrame.

Every function returns a matplotlib Figure built without pyplot, so it works
under any backend (Agg included), never opens a window and never leaks into
pyplot's global figure list. Save with `save_figure(fig, path)` or
`fig.savefig(path)` (save_figure writes atomically: never half a PNG).
"""

from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, Rectangle
from matplotlib.ticker import MaxNLocator

from .architecture import architecture_ops, is_cell_architecture, parse_cell, parse_op_meta, parse_ops
from .files import atomic_save_figure
from .correlation import DEFAULT_THRESHOLD, X, Y, correlate, degenerate_mask, has_one_shot
from .labels import GROUP_COLORS, label, op_color, op_label, sort_frame, sort_values
from .load import trial_arrays, trial_row
from .stats import pooled_columns

Hue = Union[str, Sequence[str]]
AXIS_LABELS = {X: "1-shot validation PSNR [dB]", Y: "architecture validation PSNR [dB]",
               "lambda_max_final": r"final $\lambda_{max}$ of $\nabla^2_\alpha L_{val}$"}
FILTER_TITLES = {
    "none": "all trials",
    "search": "without degenerate search (1-shot < {t:g} dB)",
    "all": "without degenerate results (1-shot or arch. < {t:g} dB)",
}


def save_figure(fig: Figure, path: Union[str, os.PathLike], dpi: int = 120) -> Path:
    """Write `fig` to `path` (format from the suffix, e.g. .png) and return the path."""
    return atomic_save_figure(fig, path, dpi=dpi)     # never a half-written figure (a full disk)


def _unpooled(df: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """`columns` plus any identity column (method, hparams, ...) that varies inside one of
    its groups within a problem panel, so a colour or box never mixes populations."""
    columns = list(columns)
    return columns + [c for c in pooled_columns(df, columns + ["problem"]) if c not in columns]


def _group_label(columns: Sequence[str], values: Sequence) -> str:
    return ", ".join(label(c, v) for c, v in zip(columns, values))


def _panel_problems(df: pd.DataFrame, problems: Sequence[str] | None) -> list[str]:
    return list(problems) if problems is not None else sort_values("problem", df["problem"].tolist())


def _correlation_label(name: str, res: dict) -> str:
    r = res["pearson_r"]
    text = f"{name} (r={r:.2f}, n={res['n']}" if np.isfinite(r) else f"{name} (r=–, n={res['n']}"
    return text + (f", {res['n_excluded']} NaN)" if res["n_excluded"] else ")")


def scatter_figure(
    df: pd.DataFrame,
    hue: Hue = "op_set",
    degenerate: str = "none",
    threshold: float = DEFAULT_THRESHOLD,
    problems: Sequence[str] | None = None,
    x: str = X,
    y: str = Y,
    title: str | None = None,
) -> Figure:
    """Architecture PSNR (y) against one-shot PSNR (x), as in Figs. 3, 5 and 6.

    One panel per problem (blur left, downsampling right); one colour per `hue`
    group (op set by default, or e.g. "hparams", or a list of columns); a
    least-squares line per group; legend "good ops. (r=0.42, n=75)" with Pearson
    r over the points shown. `degenerate` ("none", "search", "all") removes the
    degenerate trials of App. A below `threshold`. Only trials with a one-shot
    PSNR (DAS-like methods) are plotted. If a hue group would mix methods or
    hyperparameter sets, those columns are added to the hue (never pooled silently).
    """
    if degenerate not in FILTER_TITLES:
        raise ValueError(f"degenerate filter must be one of {tuple(FILTER_TITLES)}, got {degenerate!r}")
    data = df[has_one_shot(df, x)]
    if len(data) == 0:
        raise ValueError("scatter_figure: no trial has a finite one-shot PSNR (only DAS-like methods have one)")
    hue_cols = _unpooled(data, [hue] if isinstance(hue, str) else hue)
    groups = [tuple(r) for r in sort_frame(data[hue_cols].drop_duplicates(), hue_cols).to_numpy()]
    colors = {g: GROUP_COLORS[i % len(GROUP_COLORS)] for i, g in enumerate(groups)}
    panels = _panel_problems(data, problems)
    fig = Figure(figsize=(5.0 * len(panels), 4.2), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, problem in zip(axes, panels):
        sub = data[data["problem"] == problem]
        removed_total = 0
        for g in groups:
            rows = sub[(sub[hue_cols] == list(g)).all(axis=1)]
            if len(rows) == 0:
                continue
            removed = degenerate_mask(rows, degenerate, threshold, x, y)
            removed_total += int(removed.sum())
            kept = rows[~removed]
            res = correlate(kept[x], kept[y])
            ax.scatter(kept[x], kept[y], s=14, alpha=0.7, color=colors[g],
                       label=_correlation_label(_group_label(hue_cols, g), res))
            if np.isfinite(res["slope"]):
                xs = kept[x].to_numpy(float)
                xs = xs[np.isfinite(xs) & np.isfinite(kept[y].to_numpy(float))]
                line_x = np.array([xs.min(), xs.max()])
                ax.plot(line_x, res["slope"] * line_x + res["intercept"], color=colors[g], lw=1.5)
        subtitle = FILTER_TITLES[degenerate].format(t=threshold)
        if removed_total:
            subtitle += f", {removed_total} removed"
        ax.set_title(f"{label('problem', problem)}: {subtitle}", fontsize=9)
        ax.set_xlabel(AXIS_LABELS.get(x, x))
        ax.set_ylabel(AXIS_LABELS.get(y, y))
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=7, loc="best")
        else:
            ax.text(0.5, 0.5, "no trials", ha="center", va="center", transform=ax.transAxes)
    if title:
        fig.suptitle(title)
    return fig


def distribution_figure(
    df: pd.DataFrame,
    value: str = Y,
    by: Sequence[str] = ("op_set", "method"),
    problems: Sequence[str] | None = None,
    title: str | None = None,
    reference: pd.DataFrame | None = None,
) -> Figure:
    """Distribution of `value` per (op set, method): a box plus every trial as a point.

    One panel per problem. The tick label of each group gives its trial count and,
    when any, the number of diverged trials (NaN values cannot be drawn but are counted).
    Columns such as hparams are added to `by` where a group would otherwise mix them.
    `reference`: a tidy frame of the paper's statistics (:func:`analysis.reference_table`);
    its median of each group is marked with a red bar.
    """
    by = _unpooled(df, by)
    panels = _panel_problems(df, problems)
    categories = [tuple(r) for r in sort_frame(df[by].drop_duplicates(), by).to_numpy()]
    colors = {v: GROUP_COLORS[i % len(GROUP_COLORS)] for i, v in enumerate(sort_values(by[0], df[by[0]].tolist()))}
    width = max(4.0, 1.05 * len(categories) + 1.0)
    marked = False
    fig = Figure(figsize=(width * len(panels), 4.5), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    rng = np.random.default_rng(0)  # fixed jitter: the same data gives the same picture
    for ax, problem in zip(axes, panels):
        sub = df[df["problem"] == problem]
        ticks = []
        for pos, cat in enumerate(categories, start=1):
            rows = sub[(sub[by] == list(cat)).all(axis=1)]
            values = rows[value].to_numpy(float)
            good = values[np.isfinite(values)]
            n_div = int(rows["diverged"].sum()) if "diverged" in rows else int((~np.isfinite(values)).sum())
            if good.size:
                ax.boxplot([good], positions=[pos], widths=0.6, showfliers=False,
                           medianprops={"color": "black"}, boxprops={"color": colors[cat[0]]})
                ax.scatter(pos + rng.uniform(-0.18, 0.18, good.size), good, s=9, alpha=0.6,
                           color=colors[cat[0]], zorder=3)
            paper = _reference_median(reference, problem, by, cat) if value == Y else None
            if paper is not None:
                ax.hlines(paper, pos - 0.32, pos + 0.32, color="#d62728", lw=2, zorder=4,
                          label=None if marked else "paper's median")
                marked = True
            counts = f"n={len(rows)}" + (f", {n_div} div." if n_div else "")
            names = [textwrap.fill(label(c, v), 13) for c, v in zip(reversed(by), reversed(cat))]
            ticks.append("\n".join(names) + "\n" + counts)
        ax.set_xticks(range(1, len(categories) + 1))
        ax.set_xticklabels(ticks, fontsize=7)
        ax.set_xlim(0.4, len(categories) + 0.6)
        ax.set_ylabel(AXIS_LABELS.get(value, value))
        ax.set_title(label("problem", problem))
        ax.grid(axis="y", alpha=0.3)
    if marked:
        fig.legend(loc="outside lower center", fontsize=7, frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def _reference_median(reference: pd.DataFrame | None, problem: str, by: Sequence[str], cat) -> float | None:
    """The paper's median of one group, when the reference has exactly one for it."""
    if reference is None or len(reference) == 0:
        return None
    sel = (reference["problem"] == problem) & (reference["stat"] == "median")
    for column, v in zip(by, cat):
        if column in reference.columns:
            sel &= reference[column] == v
    values = reference.loc[sel, "value"].to_numpy(float)
    return float(values[0]) if len(values) == 1 and np.isfinite(values[0]) else None


def best_and_worst(
    df: pd.DataFrame,
    method: str,
    problem: str,
    op_set: str,
    value: str = Y,
    hparams: str | None = None,
) -> pd.DataFrame:
    """The best and the worst trial (by finite `value`) of one method, problem and op set,
    as two rows with a `rank` column ("best", "worst"), as in Fig. 4."""
    sel = (df["method"] == method) & (df["problem"] == problem) & (df["op_set"] == op_set)
    if hparams is not None:
        sel &= df["hparams"] == hparams
    rows = df[sel]
    rows = rows[np.isfinite(rows[value].to_numpy(float))]
    if len(rows) == 0:
        raise ValueError(f"no trial with a finite {value} for method={method!r}, "
                         f"problem={problem!r}, op_set={op_set!r}, hparams={hparams!r}")
    best = rows.loc[[rows[value].idxmax()]].assign(rank="best")
    worst = rows.loc[[rows[value].idxmin()]].assign(rank="worst")
    return pd.concat([best, worst])


def _trial_caption(row: pd.Series, value: str = Y) -> str:
    rank = f"{str(row['rank']).capitalize()} " if "rank" in row.index and isinstance(row["rank"], str) else ""
    psnr = row[value]
    psnr_text = f"{psnr:.2f} dB" if np.isfinite(psnr) else "diverged"
    hparams = f" ({row['hparams']})" if "hparams" in row.index else ""
    return (f"{rank}{row['method']}{hparams}\n{label('op_set', row['op_set'])}, "
            f"{label('problem', row['problem'])}\n{psnr_text}")


def architecture_figure(
    trials: pd.DataFrame,
    labels: Sequence[str] | None = None,
    title: str | None = None,
    value: str = Y,
) -> Figure:
    """Architectures as rows of coloured boxes, one per layer, as in Fig. 4.

    Each row is one trial (e.g. from best_and_worst); each box is labelled with its
    op and coloured by op; the row label gives the method and the PSNR (or `labels`).
    A cell-space architecture gets one box per edge, labelled "s_j→s_i" and the op.
    """
    if len(trials) == 0:
        raise ValueError("architecture_figure needs at least one trial")
    rows = [r for _, r in trials.iterrows()]
    texts = list(labels) if labels is not None else [_trial_caption(r, value) for r in rows]
    if len(texts) != len(rows):
        raise ValueError(f"{len(texts)} labels for {len(rows)} trials")
    boxes = []
    for r in rows:
        arch = str(r["architecture"])
        meta = parse_op_meta(r.get("op_meta"))
        if is_cell_architecture(arch):
            boxes.append([(f"s{e.source}→s{e.target}\n{op_label(e.op, meta)}", op_color(e.op, meta), e.op)
                          for e in parse_cell(arch)])
        else:
            boxes.append([(op_label(op, meta), op_color(op, meta), op) for op in architecture_ops(arch)])
    n_cols = max(len(b) for b in boxes)
    fig = Figure(figsize=(2.0 + 0.85 * n_cols, 0.3 + 0.75 * len(rows)), layout="constrained")
    ax = fig.subplots()
    for i, (row_boxes, text) in enumerate(zip(boxes, texts)):
        yy = -i
        ax.text(-0.15, yy, text, ha="right", va="center", fontsize=7)
        for j, (box_text, color, op) in enumerate(row_boxes):
            ax.add_patch(Rectangle((j, yy - 0.35), 0.92, 0.7, facecolor=color, edgecolor="black", lw=0.6))
            ax.text(j + 0.46, yy, box_text, ha="center", va="center", fontsize=6.5,
                    color="black" if op == "zero" else "white")
    ax.set_xlim(-2.2, n_cols)
    ax.set_ylim(-len(rows) + 0.5, 0.5)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def alpha_history_figure(alpha_history: np.ndarray, ops: Sequence[str], title: str = "",
                         panel_titles: Sequence[str] | None = None, op_meta: dict | None = None) -> Figure:
    """softmax(α) per layer over epochs: one small panel per layer, one line per op.

    `alpha_history` has shape (epochs, layers, ops); `ops` names its last axis; `op_meta` (a
    trial's parsed op_meta column) labels and colours ops the paper does not have."""
    hist = np.asarray(alpha_history, dtype=float)
    if hist.ndim != 3:
        raise ValueError(f"alpha_history must be (epochs, layers, ops), got shape {hist.shape}")
    epochs, layers, n_ops = hist.shape
    ops = list(ops) or [f"op{k}" for k in range(n_ops)]
    if len(ops) != n_ops:
        raise ValueError(f"{len(ops)} op names for alpha_history with {n_ops} ops")
    panel_titles = list(panel_titles) if panel_titles is not None else [f"layer {l + 1}" for l in range(layers)]
    ncols = min(5, layers)
    nrows = math.ceil(layers / ncols)
    fig = Figure(figsize=(2.2 * ncols, 1.8 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
    x = np.arange(1, epochs + 1)
    for l, ax in enumerate(axes.ravel()):
        if l >= layers:
            ax.set_axis_off()
            continue
        for k, op in enumerate(ops):
            ax.plot(x, hist[:, l, k], color=op_color(op, op_meta), lw=1.2, label=op_label(op, op_meta))
        ax.set_title(panel_titles[l], fontsize=8)
        ax.set_ylim(-0.02, 1.02)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("epoch", fontsize=8)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=len(ops), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def alpha_trajectory_figure(df: pd.DataFrame, trial_id: str) -> Figure:
    """α trajectories of one trial of a loaded DataFrame, read from its arrays.npz
    ("alpha_history", epochs × layers × ops) with op names from the `ops` column."""
    row = trial_row(df, trial_id)
    arrays = trial_arrays(df, trial_id)
    if "alpha_history" not in arrays:
        raise KeyError(f"trial {trial_id!r} has no alpha_history in its arrays.npz "
                       f"(has {sorted(arrays)})")
    hist = arrays["alpha_history"]
    panel_titles = None
    arch = str(row.get("architecture", ""))
    if is_cell_architecture(arch):
        edges = parse_cell(arch)
        if len(edges) == hist.shape[1]:
            panel_titles = [f"s{e.source}→s{e.target}" for e in edges]
    psnr = row.get(Y, float("nan"))
    title = (f"softmax(α): {row['method']}, {label('op_set', row['op_set'])}, "
             f"{label('problem', row['problem'])}, {row['hparams']}, seed {row['seed']}"
             + (f", arch. PSNR {psnr:.2f} dB" if np.isfinite(psnr) else ", diverged"))
    return alpha_history_figure(hist, parse_ops(row.get("ops")), title=title, panel_titles=panel_titles,
                                op_meta=parse_op_meta(row.get("op_meta")))


def cell_graph_figure(architecture: str, title: str | None = None, op_meta: dict | None = None) -> Figure:
    """A found cell (Figs. 2, 11) as a DAG: nodes s0..sN left to right, one arrow per
    non-zero edge labelled and coloured by its op (``op_meta``: a trial's parsed op_meta
    column, for ops the paper does not have); "zero" edges are left out. The last two states
    feed the cell output (concatenated, then a 1D convolution)."""
    edges = parse_cell(architecture)
    n_nodes = max(max(e.source, e.target) for e in edges) + 1
    fig = Figure(figsize=(1.3 * n_nodes + 1.2, 3.6), layout="constrained")
    ax = fig.subplots()
    ax.set_aspect("equal")
    radius = 0.22
    nodes = []
    for i in range(n_nodes):
        face = "#ffe9b3" if i >= n_nodes - 2 and n_nodes > 2 else "#dddddd"
        nodes.append(ax.add_patch(Circle((i, 0), radius, facecolor=face, edgecolor="black", zorder=3)))
        ax.text(i, 0, f"s{i}", ha="center", va="center", fontsize=9, zorder=4)
    out_x = n_nodes + 0.2
    out_node = ax.add_patch(Circle((out_x, 0), radius, facecolor="white", edgecolor="grey", ls="--", zorder=3))
    ax.text(out_x, 0, "out", ha="center", va="center", fontsize=8, zorder=4)

    def arrow(start: Circle, end: Circle, rad: float, **style) -> None:
        # patchA/patchB clip the arrow at the node circles, so heads stay visible.
        ax.add_patch(FancyArrowPatch(start.center, end.center, patchA=start, patchB=end, shrinkA=0,
                                     shrinkB=1, arrowstyle="-|>", mutation_scale=12,
                                     connectionstyle=f"arc3,rad={rad}", zorder=2, **style))

    for i in (n_nodes - 2, n_nodes - 1):
        if i > 0:
            arrow(nodes[i], out_node, 0.0 if i == n_nodes - 1 else 0.4, color="grey", ls="--")
    for e in edges:
        if e.op == "zero":
            continue
        span = e.target - e.source
        # Straight arrows between neighbours; longer edges arc above (even span) or
        # below (odd span), higher the further they reach, so labels do not collide.
        rad = 0.0 if span == 1 else (-0.45 if span % 2 == 0 else 0.45)
        arrow(nodes[e.source], nodes[e.target], rad, color=op_color(e.op, op_meta), lw=1.6)
        # Midpoint of arc3's quadratic Bezier: mid + rad/2 * (dy, -dx); dy = 0 here.
        ax.text((e.source + e.target) / 2, -0.5 * rad * span + (0.12 if span == 1 else 0.0),
                op_label(e.op, op_meta), ha="center", va="center", fontsize=7, color=op_color(e.op, op_meta),
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
                zorder=5)
    reach = 0.5 * 0.45 * max([e.target - e.source for e in edges] + [1]) + 0.4
    ax.set_xlim(-0.5, out_x + 0.5)
    ax.set_ylim(-reach, reach)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def hyperband_figure(traj: pd.DataFrame, title: str = "Hyperband trajectory",
                     xlabel: str = "cumulative budget used [epochs x trials]") -> Figure:
    """Best objective so far (per budget, thin; incumbent, thick) against cumulative trial-epochs,
    from a Hyperband trajectory table (``dasjax.hpo.trajectory``, a run's ``trajectory.csv``).

    The incumbent is the best configuration at the largest budget reached so far (hpbandster's
    definition), so its line can step *down* when a larger budget is first evaluated."""
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.add_subplot()
    x = traj["cumulative_trial_epochs"].to_numpy(float)
    cols = [c for c in traj.columns if c.startswith("best_at_")]
    for c in sorted(cols, key=lambda c: int(c.split("_")[2])):
        y = traj[c].to_numpy(float)
        if np.isfinite(y).any():
            ax.step(x, y, where="post", lw=1, alpha=0.6, label=f"best at {c.split('_')[2]} epochs")
    y = traj["incumbent_objective"].to_numpy(float)
    y = np.where(np.isfinite(y), y, np.nan)
    ax.step(x, y, where="post", color="black", lw=2.2, label="incumbent (largest budget reached)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("objective: validation PSNR [dB]")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def power_figure(curves: pd.DataFrame, title: str = "How many trials are enough",
                 target_power: float = 0.8, alpha: float = 0.05) -> Figure:
    """Power curves: the power of "a beats b" (two-sided Mann-Whitney at ``alpha``, the direction
    included) against trials per row, one line per comparison, one panel per problem.

    ``curves``: columns problem, comparison, n, power, mc_se (:func:`analysis.power.power_curves`)."""
    if len(curves) == 0:
        raise ValueError("power_figure: no power curves to draw")
    problems = sort_values("problem", curves["problem"].unique().tolist())
    fig = Figure(figsize=(5.2 * len(problems), 4.4), layout="constrained")
    axes = fig.subplots(1, len(problems), squeeze=False)[0]
    # one colour per comparison in every panel, so the one legend below them holds for all
    colors = {c: f"C{i % 10}" for i, c in enumerate(dict.fromkeys(curves["comparison"]))}
    for ax, problem in zip(axes, problems):
        sub = curves[curves["problem"] == problem]
        for comparison, c in sub.groupby("comparison", sort=False):
            c = c.sort_values("n")
            line, = ax.plot(c["n"], c["power"], marker="o", ms=3, lw=1.4, label=comparison, color=colors[comparison])
            ax.fill_between(c["n"], c["power"] - 2 * c["mc_se"], c["power"] + 2 * c["mc_se"],
                            color=line.get_color(), alpha=0.15, lw=0)
        ax.axhline(target_power, color="black", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("trials per row")
        ax.set_ylabel(f"power (p < {alpha:g}, right direction)")
        ax.set_title(f"{label('problem', problem)}")
        ax.grid(alpha=0.3, which="both")
    legend = {}
    for ax in axes:
        legend.update(zip(*reversed(ax.get_legend_handles_labels())))   # label -> handle, first kept
    labels, handles = list(legend), list(legend.values())
    fig.legend(handles, labels, loc="outside lower center", ncols=min(3, max(1, len(labels))), fontsize=7,
               frameon=False)                            # below the panels, never over the curves
    fig.suptitle(title)
    return fig
