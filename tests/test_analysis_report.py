"""The one-call report and the `python -m analysis` command."""

import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import analysis  # noqa: E402
from analysis.__main__ import main  # noqa: E402
from analysis.testing import synthetic_trials, write_results_dir  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    trials, arrays = synthetic_trials(n_trials=4, layers=3, epochs=3,
                                      methods=("DAS", "Random Sampling", "Nets only"))
    trials.loc[0, ["arch_psnr", "diverged"]] = [np.nan, True]
    write_results_dir(root / "table1", trials, {"experiment": "table1"}, arrays)
    h2, _ = synthetic_trials(n_trials=4, layers=3, epochs=3, problems=("blur",), methods=("DAS",),
                             hparams="H2", experiment="table3", seed=5)
    write_results_dir(root / "table3", h2, {"experiment": "table3"})
    return root


def test_write_report(results, tmp_path):
    df = analysis.load_results(results)
    path = analysis.write_report(df, tmp_path / "report", reference="table1", n_resamples=200, dpi=40)
    out = path.parent
    text = path.read_text()
    assert path.name == "report.md"
    assert "## table1 / sequential" in text and "## table3 / sequential" in text
    assert "4 (1 diverged)" in text  # the diverged trial is in the table
    assert "(23.46" not in text or "(21.56" in text  # reference values appear as "ours (paper, Δ)"
    for name in ("summary.csv", "correlations.csv", "comparisons.csv", "table1_sequential_table.tex"):
        assert (out / name).stat().st_size > 0, name
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert "table1_sequential_distribution.png" in pngs
    assert {f"table1_sequential_scatter_{m}.png" for m in ("none", "search", "all")} <= set(pngs)
    assert "table1_sequential_blur_good_architectures.png" in pngs
    assert "table1_sequential_blur_good_alpha.png" in pngs
    for png in pngs:  # every image is linked from report.md
        assert f"]({png})" in text
    summary = pd.read_csv(out / "summary.csv")
    assert summary["n_diverged"].sum() == 1 and summary["n"].sum() == len(df)
    corr = pd.read_csv(out / "correlations.csv")
    assert set(corr["filter"]) == {"none", "search", "all"} and set(corr["method"]) == {"DAS"}
    comp = pd.read_csv(out / "comparisons.csv")
    assert set(comp["a"]) == {"DAS"} and "Nets only" in set(comp["b"])


def test_report_says_how_many_trials_are_enough(tmp_path):
    """The section "How many trials are enough": with 10 trials per row, the trials for a ±0.5 dB
    median CI per row, the power of DAS against the other rows (a CSV and a figure) and the
    assumption; with 4, the table and the small-pilot note only."""
    trials, _ = synthetic_trials(n_trials=10, problems=("blur",), op_sets=("all",),
                                 methods=("DAS", "Random Sampling"))
    trials.loc[trials.method == "DAS", "arch_psnr"] += 5.0
    text = analysis.write_report(trials, tmp_path / "r", n_resamples=50, power_resamples=100, dpi=40).read_text()
    section = text.split("### How many trials are enough")[1]
    assert "stands in for the population" in section and "trials for ± 0.5 dB" in section
    assert "DAS > Random Sampling (all ops)" in section and "table1_sequential_power.png" in section
    curves = pd.read_csv(tmp_path / "r" / "table1_sequential_power_curves.csv")
    assert curves["power"].between(0, 1).all() and curves.groupby("comparison")["power"].last().iloc[0] > 0.9
    small = analysis.write_report(trials[trials.seed < 4], tmp_path / "s", n_resamples=50, figures=False).read_text()
    assert "fewer than 10 finite trials" in small and "no power curves" in small
    assert not (tmp_path / "s" / "table1_sequential_power_curves.csv").exists()
    assert "How many trials" not in analysis.write_report(trials, tmp_path / "n", n_resamples=50, figures=False,
                                                           power=False).read_text()


def test_write_report_cell_space(tmp_path):
    trials, arrays = synthetic_trials(n_trials=3, space="cell", experiment="table2", epochs=2,
                                      problems=("blur",), op_sets=("good",))
    df = analysis.load_results(write_results_dir(tmp_path / "cell", trials, {}, arrays))
    path = analysis.write_report(df, tmp_path / "report", n_resamples=50, dpi=40)
    assert "## table2 / cell" in path.read_text()
    # a trial whose cell runs a net on a dead state gets the dead-states section
    trials.loc[0, "architecture"] = "0>1:zero;" + ";".join(
        f"{j}>{i}:net" for i in range(1, 6) for j in range(i) if (j, i) != (0, 1))
    df = analysis.load_results(write_results_dir(tmp_path / "cell2", trials, {}, arrays))
    text = analysis.write_report(df, tmp_path / "report2", n_resamples=50, figures=False).read_text()
    assert "### Dead states" in text and "n_dead_readers" in text
    for name in ("table2_cell_blur_good_cell_das.png", "table2_cell_blur_good_alpha.png"):
        assert (path.parent / name).stat().st_size > 0


def test_cli_in_process(results, tmp_path, capsys):
    assert main([str(results / "table1"), "--out", str(tmp_path / "r"), "--threshold", "12",
                 "--n-resamples", "100", "--no-figures"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert "threshold 12 dB" in (tmp_path / "r" / "report.md").read_text()
    assert not list((tmp_path / "r").glob("*.png"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([str(empty), "--out", str(tmp_path / "r2")]) == 2
    assert "no trials.csv" in capsys.readouterr().err


def test_cli_module_entry_point(results, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-m", "analysis", str(results / "table3"), "--out",
                           str(tmp_path / "r"), "--n-resamples", "50", "--no-figures"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "r" / "report.md").is_file()
