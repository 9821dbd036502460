"""Every figure function renders a non-empty PNG under the Agg backend."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import analysis  # noqa: E402
from analysis.testing import synthetic_trials, write_results_dir  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CELL = "0>1:net;0>2:zero;1>2:lg;0>3:roll;1>3:zero;2>3:net;0>4:zero;1>4:lg;2>4:zero;3>4:net;" \
       "0>5:noise;1>5:zero;2>5:zero;3>5:lg;4>5:net"


@pytest.fixture(scope="module")
def df(tmp_path_factory):
    trials, arrays = synthetic_trials(n_trials=5, layers=4, epochs=4)
    trials.loc[0, ["arch_psnr", "diverged"]] = [np.nan, True]
    folder = write_results_dir(tmp_path_factory.mktemp("res") / "run", trials, {}, arrays)
    return analysis.load_results(folder)


def assert_png(fig, path):
    analysis.save_figure(fig, path, dpi=50)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000


def legend_texts(fig):
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


@pytest.mark.parametrize("degenerate", ["none", "search", "all"])
def test_scatter_figure(df, tmp_path, degenerate):
    fig = analysis.scatter_figure(df, degenerate=degenerate, threshold=15.0)
    assert len(fig.axes) == 2 and "Blur" in fig.axes[0].get_title()
    texts = legend_texts(fig)
    assert any(t.startswith("good ops. (r=") for t in texts) and any("all ops." in t for t in texts)
    assert_png(fig, tmp_path / "scatter.png")


def test_scatter_figure_hue_hparams_and_errors(df, tmp_path):
    fig = analysis.scatter_figure(df[df.op_set == "good"], hue="hparams", problems=["blur"])
    assert len(fig.axes) == 1 and legend_texts(fig) == [legend_texts(fig)[0]]
    assert legend_texts(fig)[0].startswith("H1 (r=")
    assert_png(fig, tmp_path / "scatter_h.png")
    # A hue that would pool op sets gets the op set added: one entry per population.
    assert sorted(legend_texts(analysis.scatter_figure(df, hue="hparams", problems=["blur"])))[0] \
        .startswith("H1, all ops. (r=")
    with pytest.raises(ValueError, match="degenerate filter"):
        analysis.scatter_figure(df, degenerate="some")
    with pytest.raises(ValueError, match="one-shot"):
        analysis.scatter_figure(df[df.method == "Random Sampling"])


def test_distribution_figure(df, tmp_path):
    fig = analysis.distribution_figure(df)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert any("1 div." in t for t in labels)  # the diverged trial is reported
    assert all(len(line) <= 13 for t in labels for line in t.splitlines())   # long names wrap, never collide
    assert_png(fig, tmp_path / "dist.png")
    # the paper's medians are marked where the reference has one for a group, and named once
    ref = analysis.reference_table("table1")
    marked = analysis.distribution_figure(df, reference=ref[ref["space"] == "sequential"])
    bars = [c for c in marked.axes[0].collections if c.get_label() == "paper's median" or
            type(c).__name__ == "LineCollection"]
    want = ref[(ref.problem == "blur") & (ref["stat"] == "median") & (ref.space == "sequential")
               & ref.method.isin(df.method) & ref.op_set.isin(df.op_set)]["value"]
    got = sorted(float(seg[0][1]) for c in bars for seg in c.get_segments())
    assert got == sorted(want.tolist()) and len(got) >= 2
    assert [t.get_text() for t in marked.legends[0].get_texts()] == ["paper's median"]


def test_report_figures_in_a_vector_format(df, tmp_path):
    path = analysis.write_report(df, tmp_path / "rep", n_resamples=99, power=False, figure_format="svg")
    svgs = sorted(p.name for p in (tmp_path / "rep").glob("*.svg"))
    assert svgs and not list((tmp_path / "rep").glob("*.png"))
    assert all(f"]({name})" in path.read_text() for name in svgs)
    assert (tmp_path / "rep" / svgs[0]).read_text().lstrip().startswith("<?xml")
    with pytest.raises(ValueError, match="figure_format"):
        analysis.write_report(df, tmp_path / "rep2", figure_format="jpg")


def test_architecture_figure_best_and_worst(df, tmp_path):
    picks = analysis.best_and_worst(df, "DAS", "blur", "good")
    assert picks["rank"].tolist() == ["best", "worst"]
    das = df[(df.method == "DAS") & (df.problem == "blur") & (df.op_set == "good")]
    assert picks.iloc[0]["arch_psnr"] == das["arch_psnr"].max()
    assert picks.iloc[1]["arch_psnr"] == das["arch_psnr"].min()
    both = [picks, analysis.best_and_worst(df, "Random Sampling", "blur", "good")]
    assert_png(analysis.architecture_figure(pd.concat(both)), tmp_path / "arch.png")
    cell_row = picks.iloc[:1].assign(architecture=CELL)
    assert_png(analysis.architecture_figure(cell_row), tmp_path / "arch_cell.png")
    with pytest.raises(ValueError, match="no trial"):
        analysis.best_and_worst(df, "DAS", "blur", "nonexistent")


def test_alpha_trajectory_figure(df, tmp_path):
    tid = df.loc[df.method == "DAS", "trial_id"].iloc[0]
    fig = analysis.alpha_trajectory_figure(df, tid)
    assert sum(ax.has_data() for ax in fig.axes) == 4  # one panel per layer
    assert_png(fig, tmp_path / "alpha.png")
    with pytest.raises(KeyError, match="alpha_history"):
        analysis.alpha_trajectory_figure(df, df.loc[df.method == "Random Sampling", "trial_id"].iloc[0])


def test_cell_graph_figure(tmp_path):
    fig = analysis.cell_graph_figure(CELL, title="cell")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert {"s0", "s5", "out"} <= set(texts)
    assert texts.count("Net") == 4 and "Zero" not in texts  # zero edges are not drawn
    assert_png(fig, tmp_path / "cell.png")
