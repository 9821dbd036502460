"""The user guide's snippets run as written (docs/analysis.md stays copy-pasteable)."""

import re
import shlex
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from analysis.__main__ import main  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "analysis.md"


def blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_python_snippets_run_in_order(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for code in blocks("python"):
        exec(compile(code, str(DOC), "exec"), namespace)
    assert (tmp_path / "example_report" / "report.md").is_file()
    assert (tmp_path / "example_report" / "scatter.png").stat().st_size > 0


def test_shell_snippet_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from analysis.testing import synthetic_trials, write_results_dir
    trials, arrays = synthetic_trials(n_trials=3, problems=("blur",))
    write_results_dir("example_results/table1", trials, {}, arrays)
    (command,) = blocks("bash")
    argv = shlex.split(command.strip())
    assert argv[:3] == ["python", "-m", "analysis"]
    assert main(argv[3:] + ["--no-figures", "--n-resamples", "100"]) == 0
    assert (tmp_path / "example_report" / "report.md").is_file()
