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
"""

from .architecture import (Edge, architecture_ops, dead_state_readers, dead_state_summary, dead_states, parse_alpha,
                           parse_cell, parse_op_meta, parse_ops, parse_sequential)
from .curvature import (early_stop_summary, has_curvature, lambda_correlation_table, lambda_trajectories,
                        trajectory_figure)
from .correlation import (DEFAULT_THRESHOLD, DEGENERATE_FILTERS, correlate, correlation_table,
                          degenerate_mask, filter_degenerate)
from .findings import FINDINGS, findings_markdown, table1_findings
from .figures import (alpha_history_figure, alpha_trajectory_figure, architecture_figure, best_and_worst,
                      cell_graph_figure, distribution_figure, hyperband_figure, power_figure, save_figure,
                      scatter_figure)
from .load import (REQUIRED_COLUMNS, ResultsFormatError, find_results_dirs, load_arrays, load_config,
                   load_results, load_results_dir, trial_arrays)
from .power import findings_power, power_curve, power_curves, trials_needed
from .reference import reference_table
from .report import write_report
from .stats import GROUP_COLUMNS, bootstrap_ci, compare, compare_all, describe, mann_whitney, summarize
from .tables import Table, latex_table, markdown_table, results_table

__all__ = [
    "DEFAULT_THRESHOLD", "DEGENERATE_FILTERS", "Edge", "FINDINGS", "GROUP_COLUMNS", "REQUIRED_COLUMNS",
    "ResultsFormatError", "Table", "alpha_history_figure", "alpha_trajectory_figure",
    "architecture_figure", "architecture_ops", "best_and_worst", "bootstrap_ci", "cell_graph_figure",
    "compare", "compare_all", "correlate", "correlation_table", "dead_state_readers", "dead_state_summary",
    "dead_states", "degenerate_mask", "describe", "findings_power", "power_curve", "power_curves", "trials_needed",
    "distribution_figure", "early_stop_summary", "filter_degenerate", "findings_markdown", "has_curvature", "hyperband_figure", "power_figure",
    "lambda_correlation_table", "lambda_trajectories", "trajectory_figure", "find_results_dirs", "latex_table", "load_arrays",
    "load_config", "load_results", "load_results_dir", "mann_whitney", "markdown_table", "parse_alpha",
    "parse_cell", "parse_op_meta", "parse_ops", "parse_sequential", "reference_table", "results_table", "save_figure",
    "scatter_figure", "summarize", "table1_findings", "trial_arrays", "write_report",
]
