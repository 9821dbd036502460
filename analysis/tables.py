"""Tables in the paper's layout, as markdown and LaTeX.

Rows are (op set, method) as in Table 1 or (op set, hyperparameter set) as in
Table 3; for each problem there are Max, Mean, Med., Min and Std columns plus
an "n" column that always shows the trial count and, when any, how many
trials diverged: a diverged trial is left out of the numbers, never out of
the table. With a reference (the paper's values) each number reads
"ours (paper, Δ)".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .labels import STAT_LABELS, label, sort_frame, sort_values
from .reference import reference_table
from .stats import IDENTITY_COLUMNS, STATS, pooled_columns, summarize

ROW_HEADERS = {"op_set": "Op set", "method": "Method", "hparams": "Hyperparameters",
               "problem": "Problem", "space": "Space", "experiment": "Experiment"}
MISSING = "–"


def fmt(value: float, digits: int = 2) -> str:
    """A number with `digits` decimals; NaN/None as an en dash."""
    if value is None or not np.isfinite(value):
        return MISSING
    return f"{value:.{digits}f}"


def count_cell(n: int, n_diverged: int) -> str:
    """The "n" cell: "75", or "75 (2 diverged)" when trials diverged."""
    return f"{n} ({n_diverged} diverged)" if n_diverged else f"{n}"


def value_cell(ours: float, paper: float | None, digits: int = 2) -> str:
    """"ours" or, with a reference value, "ours (paper, Δ)" where Δ = ours - paper."""
    if paper is None or not np.isfinite(paper):
        return fmt(ours, digits)
    delta = ours - paper if np.isfinite(ours) else float("nan")
    delta_text = MISSING if not np.isfinite(delta) else f"{delta:+.{digits}f}"
    return f"{fmt(ours, digits)} ({fmt(paper, digits)}, {delta_text})"


@dataclass(frozen=True)
class Table:
    """A rendered table: row-key headers, one column group per problem, string cells."""

    row_header: tuple[str, ...]
    groups: tuple[str, ...]
    sub_header: tuple[str, ...]
    body: tuple[tuple[str, ...], ...]

    def to_markdown(self) -> str:
        """GitHub markdown; group and sub-header joined into one header ("Blur Max")."""
        header = list(self.row_header) + [f"{g} {s}" for g in self.groups for s in self.sub_header]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in self.body]
        return "\n".join(lines) + "\n"

    def to_latex(self) -> str:
        """A booktabs tabular with one \\multicolumn per problem (needs \\usepackage{booktabs})."""
        k, m, groups = len(self.row_header), len(self.sub_header), self.groups
        spans = [rf"\multicolumn{{{m}}}{{c}}{{{latex_escape(g)}}}" for g in groups]
        rules = [rf"\cmidrule(lr){{{k + 1 + i * m}-{k + (i + 1) * m}}}" for i in range(len(groups))]
        header = list(self.row_header) + list(self.sub_header) * len(groups)
        lines = [r"\begin{tabular}{" + "l" * k + "r" * (m * len(groups)) + "}", r"\toprule"]
        lines.append(" & ".join([""] * k + spans) + r" \\")
        lines.append(" ".join(rules))
        lines.append(" & ".join(latex_escape(h) for h in header) + r" \\")
        lines.append(r"\midrule")
        lines += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in self.body]
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines) + "\n"


def md_escape(text: str) -> str:
    """Escape the one character that breaks a markdown table cell ("|")."""
    return str(text).replace("|", "\\|")


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", MISSING: "--", "Δ": r"$\Delta$"}


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters (and write the en dash as --)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def check_not_pooled(df: pd.DataFrame, keys: Sequence[str]) -> None:
    """Raise if a cell keyed by `keys` would pool trials of different experiments,
    spaces, problems, op sets, methods or hyperparameter sets (silent pooling
    would misreport the statistics); the message says which column to add or filter."""
    pooled = pooled_columns(df, keys)
    if pooled:
        raise ValueError(
            f"table cells keyed by {list(keys)} would pool several values of {pooled}; "
            f"add them to `rows` or filter the DataFrame first"
        )


def _reference_lookup(reference: pd.DataFrame | None, columns: Sequence[str]):
    """({key values..., stat}: value, key columns): the reference keyed by every
    column it shares with `columns`, so e.g. an H1 reference never matches H2 rows."""
    if reference is None or len(reference) == 0:
        return {}, []
    ref_keys = [c for c in reference.columns if c not in ("stat", "value") and c in columns]
    lookup = {tuple(r[c] for c in ref_keys) + (r["stat"],): float(r["value"])
              for _, r in reference.iterrows()}
    return lookup, ref_keys


def results_table(
    df: pd.DataFrame,
    rows: Sequence[str] = ("op_set", "method"),
    column: str = "problem",
    value: str = "arch_psnr",
    stats: Sequence[str] = STATS,
    ddof: int = 0,
    reference: pd.DataFrame | str | None = None,
    digits: int = 2,
    labels: dict | None = None,
    runtime: bool = False,
) -> Table:
    """Statistics of `value` per row key and per `column` value (problem), paper layout.

    `reference` is a name ("table1") or a tidy frame with key columns plus `stat`
    and `value` (see analysis.reference); where it has a value for the same
    population the cell reads "ours (paper, Δ)". Only rows present in `df` are shown.
    `labels` overrides display names per column, e.g. {"method": {"Nets only": "DnCNN (Nets only)"}}.
    `runtime` adds the paper's "Runtime (h:min:sec)" column: the mean `wall_time_s` per trial.
    """
    labels = labels or {}

    def name(col, v):
        return labels.get(col, {}).get(v, label(col, v))

    if isinstance(reference, str):
        reference = reference_table(reference)
    rows, keys = list(rows), list(rows) + [column]
    check_not_pooled(df, keys)
    # Group by every identity column too (constant within a cell, checked above), so each
    # summary row knows its population (space, hparams, ...) for the reference lookup.
    by = keys + [c for c in IDENTITY_COLUMNS if c in df.columns and c not in keys]
    summary = summarize(df, by=by, value=value, ddof=ddof, ci=False)
    ref, ref_keys = _reference_lookup(reference, by)
    groups = sort_values(column, summary[column].tolist())
    body = []
    for _, row_key in sort_frame(summary[rows].drop_duplicates(), rows).iterrows():
        cells = [name(c, row_key[c]) for c in rows]
        in_row = (summary[rows] == row_key[rows]).all(axis=1)
        for g in groups:
            match = summary[in_row & (summary[column] == g)]
            if len(match) == 0:
                cells += [MISSING] * len(stats) + ["0"]
                continue
            s = match.iloc[0]
            for stat in stats:
                paper = ref.get(tuple(s[c] for c in ref_keys) + (stat,))
                cells.append(value_cell(s[stat], paper, digits))
            cells.append(count_cell(int(s["n"]), int(s["n_diverged"])))
            if runtime:
                sel = (df[rows] == row_key[rows]).all(axis=1) & (df[column] == g)
                cells.append(hms(df.loc[sel, "wall_time_s"].astype(float).mean()))
        body.append(tuple(cells))
    return Table(
        row_header=tuple(ROW_HEADERS.get(c, c) for c in rows),
        groups=tuple(name(column, g) for g in groups),
        sub_header=tuple(STAT_LABELS.get(s, s) for s in stats) + ("n",) + (("Runtime (h:min:sec)",) if runtime else ()),
        body=tuple(body),
    )


def hms(seconds: float) -> str:
    """Seconds as h:mm:ss (the paper's runtime format); NaN as an en dash."""
    if seconds is None or not np.isfinite(seconds):
        return MISSING
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def markdown_table(df: pd.DataFrame, **kwargs: Any) -> str:
    """results_table(df, **kwargs) as GitHub markdown."""
    return results_table(df, **kwargs).to_markdown()


def latex_table(df: pd.DataFrame, **kwargs: Any) -> str:
    """results_table(df, **kwargs) as a LaTeX booktabs tabular."""
    return results_table(df, **kwargs).to_latex()


def integer_cells(values) -> pd.Series:
    """Counts held as floats (NaN where there is none) as integers for :func:`frame_to_markdown`,
    which prints a float with decimals; NaN stays NaN (a dash)."""
    values = pd.Series(values)
    return pd.Series([int(v) if np.isfinite(v) else np.nan for v in values], index=values.index, dtype=object)


def frame_to_markdown(df: pd.DataFrame, digits: int = 3) -> str:
    """Any DataFrame as a GitHub markdown table (floats with `digits` decimals,
    p-values in scientific notation when < 0.001, NaN as an en dash)."""
    def cell(column, v):
        if isinstance(v, (bool, np.bool_)):
            return str(bool(v))
        if isinstance(v, (int, np.integer)):
            return str(int(v))
        if isinstance(v, (float, np.floating)):
            if not np.isfinite(v):
                return MISSING
            if column.endswith("_p") or column == "p_value":
                return f"{v:.2e}" if abs(v) < 1e-3 and v != 0 else f"{v:.3f}"
            return f"{v:.{digits}f}"
        return md_escape(str(v))

    columns = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(cell(c, r[c]) for c in df.columns) + " |")
    return "\n".join(lines) + "\n"
