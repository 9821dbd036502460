"""Tables in the paper's layout: exact markdown, LaTeX, diverged counts, reference values."""

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis.reference import TABLE1_ROWS

NAN = float("nan")
VALUES = {
    ("blur", "DAS"): [20.0, 22.0, NAN],
    ("blur", "Random Sampling"): [18.0, 19.0, 20.0],
    ("downsampling", "DAS"): [15.0, 17.0],
    ("downsampling", "Random Sampling"): [14.0],
}


def table_frame(hparams="H1"):
    rows = [{"experiment": "table1", "space": "sequential", "problem": p, "op_set": "good",
             "method": m, "hparams": hparams, "arch_psnr": v, "diverged": not np.isfinite(v)}
            for (p, m), vs in VALUES.items() for v in vs]
    return pd.DataFrame(rows)


EXPECTED = """\
| Op set | Method | Blur Max | Blur Mean | Blur Med. | Blur Min | Blur Std | Blur n | Downsampling Max | Downsampling Mean | Downsampling Med. | Downsampling Min | Downsampling Std | Downsampling n |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| good ops. | DAS | 22.00 | 21.00 | 21.00 | 20.00 | 1.00 | 3 (1 diverged) | 17.00 | 16.00 | 16.00 | 15.00 | 1.00 | 2 |
| good ops. | Random Sampling | 20.00 | 19.00 | 19.00 | 18.00 | 0.82 | 3 | 14.00 | 14.00 | 14.00 | 14.00 | 0.00 | 1 |
"""


def test_markdown_table_exact():
    assert analysis.markdown_table(table_frame()) == EXPECTED


def test_markdown_table_with_reference_exact():
    got = analysis.markdown_table(table_frame(), reference=analysis.reference_table("table1"),
                                  stats=("max", "median"))
    assert got == """\
| Op set | Method | Blur Max | Blur Med. | Blur n | Downsampling Max | Downsampling Med. | Downsampling n |
|---|---|---|---|---|---|---|---|
| good ops. | DAS | 22.00 (23.46, -1.46) | 21.00 (21.60, -0.60) | 3 (1 diverged) | 17.00 (18.03, -1.03) | 16.00 (16.66, -0.66) | 2 |
| good ops. | Random Sampling | 20.00 (24.04, -4.04) | 19.00 (22.17, -3.17) | 3 | 14.00 (18.10, -4.10) | 14.00 (16.84, -2.84) | 1 |
"""


def test_reference_only_beside_the_same_population():
    # Table 1 used H1: an H2 run gets no paper values beside it.
    assert analysis.markdown_table(table_frame("H2"), reference=analysis.reference_table("table1")) \
        == EXPECTED
    cell = table_frame().assign(space="cell")
    assert "(23.46" not in analysis.markdown_table(cell, reference=analysis.reference_table("table1"))


def test_diverged_trials_are_counted_not_dropped():
    df = table_frame()
    df.loc[df["method"] == "Random Sampling", "arch_psnr"] = NAN
    df.loc[df["method"] == "Random Sampling", "diverged"] = True
    table = analysis.results_table(df)
    rs = [row for row in table.body if row[1] == "Random Sampling"][0]
    assert rs == ("good ops.", "Random Sampling", "–", "–", "–", "–", "–", "3 (3 diverged)",
                  "–", "–", "–", "–", "–", "1 (1 diverged)")


def test_latex_table():
    tex = analysis.latex_table(table_frame(), rows=("op_set", "method"))
    assert tex.startswith("\\begin{tabular}{llrrrrrrrrrrrr}\n\\toprule\n")
    assert "\\multicolumn{6}{c}{Blur} & \\multicolumn{6}{c}{Downsampling} \\\\" in tex
    assert "\\cmidrule(lr){3-8} \\cmidrule(lr){9-14}" in tex
    assert "good ops. & DAS & 22.00 & 21.00 & 21.00 & 20.00 & 1.00 & 3 (1 diverged) & 17.00" in tex
    assert tex.rstrip().endswith("\\bottomrule\n\\end{tabular}")
    assert analysis.tables.latex_escape("a_b & 5% –") == "a\\_b \\& 5\\% --"


def test_hparams_rows_and_pooling_error():
    df = pd.concat([table_frame("H1"), table_frame("H2").assign(arch_psnr=lambda d: d.arch_psnr + 1)])
    with pytest.raises(ValueError, match="hparams"):
        analysis.results_table(df)  # would pool H1 and H2 in one cell
    table = analysis.results_table(df[df.method == "DAS"], rows=("op_set", "hparams"))
    assert table.row_header == ("Op set", "Hyperparameters")
    assert [row[:3] for row in table.body] == [("good ops.", "H1", "22.00"), ("good ops.", "H2", "23.00")]


def test_reference_table1_is_copied_exactly():
    ref = analysis.reference_table("table1")
    assert len(ref) == 8 * 2 * 5
    def val(op_set, method, problem, stat):
        sel = ref[(ref.op_set == op_set) & (ref.method == method) & (ref.problem == problem) & (ref.stat == stat)]
        return sel["value"].item()
    assert val("good", "DAS", "blur", "median") == 21.60
    assert val("all", "DAS", "downsampling", "min") == 1.04
    assert val("good", "Nets only", "downsampling", "std") == 3.46
    assert val("all", "Random Search", "blur", "mean") == 12.12
    assert TABLE1_ROWS[("good", "Random Search")][-1] == "2:55"
    for name in ("table3", "table4", "table5"):
        with pytest.raises(ValueError, match="withheld"):
            analysis.reference_table(name)
    # Table 2: only the two released single-op rows, in the cell space
    t2 = analysis.reference_table("table2")
    assert set(t2["method"]) == {"Learnable Grad. only", "Nets only"} and set(t2["space"]) == {"cell"}
    sel = t2[(t2.method == "Nets only") & (t2.problem == "downsampling") & (t2.stat == "median")]
    assert sel["value"].item() == 13.06
