#!/usr/bin/env python
"""Table 1 (cpu preset, 25 trials per row) from the all-ops rows rerun after calibration stage 5
and the good-ops rows of the 2026-11-23 run, which no stage-5 field touches (good-ops runs hold
neither a roll nor a noise layer; tests/test_search.py checks that they are bitwise unchanged).

    python docs/results/table1_cpu/combine_with_good_rows.py

Writes table1_combined.md and findings_combined.md / .csv beside this file.  A full rerun,
``python experiments/run_table1.py --preset cpu``, gives the same numbers in one folder.
"""
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

import analysis  # noqa: E402

ALL_OPS = HERE / "trials.csv"                                          # this folder: today's defaults
GOOD_OPS = HERE.parent / "archive" / "table1_cpu_grad_detached" / "trials.csv"


def main(all_ops=ALL_OPS, good_ops=GOOD_OPS, out=HERE) -> pd.DataFrame:
    new, old = pd.read_csv(all_ops), pd.read_csv(good_ops)
    df = pd.concat([old[old["op_set"] == "good"], new[new["op_set"] == "all"]], ignore_index=True)
    table = analysis.results_table(df, reference="table1")
    (Path(out) / "table1_combined.md").write_text(
        "# Table 1 (cpu preset, 25 trials per row): good-ops rows of 2026-11-23, all-ops rows after "
        "calibration stage 5\n\nEach cell: ours (paper, ours - paper).\n\n" + table.to_markdown() + "\n")
    findings = analysis.table1_findings(df)
    (Path(out) / "findings_combined.md").write_text(
        "# The paper's Table 1 findings on the combined trials\n\nVerdicts and tests: see "
        "`analysis/findings.py`.\n\n" + analysis.findings_markdown(findings))
    (Path(out) / "findings_combined.csv").write_text(findings.to_csv(index=False))
    print(table.to_markdown())
    print(analysis.findings_markdown(findings))
    return df


if __name__ == "__main__":
    main()
