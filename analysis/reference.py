"""The paper's published numbers, as data, to print beside our own.

Stored: Table 1 (sequential space, architecture validation PSNR, 75 trials), copied exactly from
paper Table 1, and Table 2's two single-op rows (cell space, 100 trials), released for
calibrating the cell space.  The other numbers of Tables 2-5 are withheld on purpose as held-out
checks, so nothing is stored for them.
"""

from __future__ import annotations

import pandas as pd

STATS = ("max", "mean", "median", "min", "std")

# (op_set, method): (blur max, mean, med., min, std, downsampling max, mean, med., min, std, runtime)
TABLE1_ROWS = {
    ("good", "Learnable Grad. only"): (17.45, 16.36, 16.49, 8.80, 0.99, 14.35, 13.24, 13.55, 7.95, 1.22, "0:57"),
    ("good", "Nets only"): (21.63, 19.45, 20.71, 8.07, 2.98, 16.92, 13.13, 14.05, 1.08, 3.46, "0:57"),
    ("good", "DAS"): (23.46, 21.56, 21.60, 17.60, 1.03, 18.03, 16.36, 16.66, 11.48, 1.18, "2:39"),
    ("good", "Random Sampling"): (24.04, 22.05, 22.17, 19.43, 0.77, 18.10, 16.73, 16.84, 14.51, 0.79, "0:57"),
    ("good", "Random Search"): (24.04, 22.60, 22.63, 21.29, 0.48, 18.10, 17.40, 17.49, 16.26, 0.45, "2:55"),
    ("all", "DAS"): (22.86, 15.64, 18.57, 7.95, 6.09, 18.01, 15.39, 16.12, 1.04, 3.13, "2:53"),
    ("all", "Random Sampling"): (20.86, 9.45, 8.10, 7.88, 2.85, 13.78, 5.08, 4.31, 1.11, 2.95, "0:35"),
    ("all", "Random Search"): (20.86, 12.12, 12.24, 8.09, 4.11, 13.78, 9.61, 9.77, 6.22, 2.12, "2:55"),
}
TABLE1_TRIALS = 75
TABLE1_HPARAMS = "H1"

# Table 2 (cell space): only the single-op rows are released; its DAS and random-sampling rows stay withheld
TABLE2_SINGLE_OP_ROWS = {
    ("good", "Learnable Grad. only"): (13.19, 12.41, 12.38, 11.81, 0.23, 11.30, 8.89, 9.59, 1.13, 2.60, "7:33"),
    ("good", "Nets only"): (16.35, 14.83, 15.82, 8.01, 2.65, 13.63, 13.07, 13.06, 12.53, 0.18, "6:35"),
}
TABLE2_TRIALS = 100

WITHHELD = ("table3", "table4", "table5")


def _tidy(rows: dict, space: str) -> pd.DataFrame:
    out = []
    for (op_set, method), values in rows.items():
        for i, problem in enumerate(("blur", "downsampling")):
            for j, stat in enumerate(STATS):
                out.append({"space": space, "hparams": TABLE1_HPARAMS, "op_set": op_set,
                            "method": method, "problem": problem, "stat": stat,
                            "value": values[5 * i + j]})
    return pd.DataFrame(out)


def table1() -> pd.DataFrame:
    """Paper Table 1 in tidy form: columns space, hparams, op_set, method, problem, stat, value.

    space ("sequential") and hparams ("H1") say which population the values
    describe; tables only put them beside rows of the same space and set."""
    return _tidy(TABLE1_ROWS, "sequential")


def table2() -> pd.DataFrame:
    """Paper Table 2's released rows (Learnable-Grad-only and Nets-only, cell space, H1), tidy as
    :func:`table1`; its DAS and random-sampling rows are withheld and not stored."""
    return _tidy(TABLE2_SINGLE_OP_ROWS, "cell")


def table1_runtimes() -> pd.DataFrame:
    """Paper Table 1 runtimes per trial (min:sec, as printed): op_set, method, runtime."""
    return pd.DataFrame([{"op_set": k[0], "method": k[1], "runtime": v[-1]} for k, v in TABLE1_ROWS.items()])


REFERENCES = {"table1": table1, "table2": table2}


def reference_table(name: str) -> pd.DataFrame:
    """A stored reference table by name ("table1", "table2": its released rows only); a clear
    error for withheld or unknown ones."""
    if name in REFERENCES:
        return REFERENCES[name]()
    if name in WITHHELD:
        raise ValueError(f"reference {name!r} is withheld (held-out check); no values are stored")
    raise ValueError(f"unknown reference {name!r}; available: {sorted(REFERENCES)}")
