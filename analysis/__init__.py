"""analysis: statistics, correlations, figures and tables from saved DAS results.

The paper's conclusion is a reporting standard: judge differentiable
architecture search by the statistics of many runs, and show how one-shot and
final performance correlate. This package makes that the default output. It
works on saved results folders only (trials.csv, config.json, arrays.npz)::

    import analysis
    df = analysis.load_results("results/table1")
    analysis.summarize(df)                     # max/mean/median/min/std, n, diverged, CIs
    analysis.correlation_table(df)             # one-shot vs architecture PSNR
    analysis.table1_findings(df)               # the paper's Table 1 findings: hold or not
    print(analysis.markdown_table(df, reference=analysis.reference_table("table1")))
    analysis.write_report(df, "report/")       # everything at once

Names load from their submodules on first use (PEP 562), so ``import analysis`` and the
results-folder modules dasjax writes with (:mod:`analysis.files`) stay light: matplotlib and
scipy load only when a figure or a statistic is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_SUBMODULE = {
    "RowState": "check",
    "check_results": "check",
    "Edge": "architecture",
    "architecture_ops": "architecture",
    "dead_state_readers": "architecture",
    "dead_state_summary": "architecture",
    "dead_states": "architecture",
    "parse_alpha": "architecture",
    "parse_cell": "architecture",
    "parse_op_meta": "architecture",
    "parse_ops": "architecture",
    "parse_sequential": "architecture",
    "early_stop_summary": "curvature",
    "has_curvature": "curvature",
    "lambda_correlation_table": "curvature",
    "lambda_trajectories": "curvature",
    "trajectory_figure": "curvature",
    "DEFAULT_THRESHOLD": "correlation",
    "DEGENERATE_FILTERS": "correlation",
    "correlate": "correlation",
    "correlation_table": "correlation",
    "degenerate_mask": "correlation",
    "filter_degenerate": "correlation",
    "FINDINGS": "findings",
    "findings_markdown": "findings",
    "table1_findings": "findings",
    "alpha_history_figure": "figures",
    "alpha_trajectory_figure": "figures",
    "architecture_figure": "figures",
    "best_and_worst": "figures",
    "cell_graph_figure": "figures",
    "distribution_figure": "figures",
    "hyperband_figure": "figures",
    "power_figure": "figures",
    "save_figure": "figures",
    "scatter_figure": "figures",
    "REQUIRED_COLUMNS": "load",
    "ResultsFormatError": "load",
    "find_results_dirs": "load",
    "load_arrays": "load",
    "load_config": "load",
    "load_results": "load",
    "load_results_dir": "load",
    "trial_arrays": "load",
    "findings_power": "power",
    "power_curve": "power",
    "power_curves": "power",
    "trials_needed": "power",
    "reference_table": "reference",
    "write_report": "report",
    "GROUP_COLUMNS": "stats",
    "bootstrap_ci": "stats",
    "compare": "stats",
    "compare_all": "stats",
    "describe": "stats",
    "mann_whitney": "stats",
    "summarize": "stats",
    "Table": "tables",
    "latex_table": "tables",
    "markdown_table": "tables",
    "results_table": "tables",
}

__all__ = sorted(_SUBMODULE)

if TYPE_CHECKING:             # what a type checker sees; at run time __getattr__ loads them
    from .architecture import (
        Edge, architecture_ops, dead_state_readers, dead_state_summary, dead_states, parse_alpha,
        parse_cell, parse_op_meta, parse_ops, parse_sequential)
    from .check import RowState, check_results
    from .correlation import (
        DEFAULT_THRESHOLD, DEGENERATE_FILTERS, correlate, correlation_table, degenerate_mask,
        filter_degenerate)
    from .curvature import (
        early_stop_summary, has_curvature, lambda_correlation_table, lambda_trajectories,
        trajectory_figure)
    from .figures import (
        alpha_history_figure, alpha_trajectory_figure, architecture_figure, best_and_worst,
        cell_graph_figure, distribution_figure, hyperband_figure, power_figure, save_figure,
        scatter_figure)
    from .findings import FINDINGS, findings_markdown, table1_findings
    from .load import (
        REQUIRED_COLUMNS, ResultsFormatError, find_results_dirs, load_arrays, load_config,
        load_results, load_results_dir, trial_arrays)
    from .power import findings_power, power_curve, power_curves, trials_needed
    from .reference import reference_table
    from .report import write_report
    from .stats import GROUP_COLUMNS, bootstrap_ci, compare, compare_all, describe, mann_whitney, summarize
    from .tables import Table, latex_table, markdown_table, results_table


def __getattr__(name: str) -> Any:
    if name in _SUBMODULE:
        value = getattr(importlib.import_module(f".{_SUBMODULE[name]}", __name__), name)
        globals()[name] = value
        return value
    try:                                       # a submodule: analysis.stats, analysis.labels, ...
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SUBMODULE))
