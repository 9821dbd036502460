"""Long runs that survive: checkpoint/resume, atomic writes, clear CLI errors, Table 1 end to end."""
import contextlib
import io
import json
import logging
import os

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_CLI, load_script, tiny

import dasjax
from dasjax.runners import common as table_runner  # the runners' shared machinery
from dasjax import logs
from dasjax.api import resolve_hparams
from dasjax.batch import run_batched, trial_keys
from dasjax.results import atomic_write_text
from dasjax.search import SearchProgram
from dasjax.spaces import make_space

class Killed(Exception):
    pass


def test_resume_gives_the_same_numbers(tmp_path):
    """Stop after k checkpoint chunks (in the second trial chunk), resume, compare bitwise."""
    cfg = tiny(op_set="all", epochs=4)
    space = make_space(cfg, dasjax.make_problem(cfg.problem))
    hp, types, _ = resolve_hparams("H1", 3)
    prog = SearchProgram(cfg, space, types)
    keys = trial_keys([0, 1, 2])
    kw = dict(n_epochs=4, chunk_size=2, progress=False, fast_compile=True, checkpoint_every=1)
    ref = run_batched(prog, keys, hp, **kw)
    ckpt = tmp_path / "search.npz"

    def kill(c0, epochs_done):
        if c0 == 2 and epochs_done == 2:
            raise Killed

    with pytest.raises(Killed):
        run_batched(prog, keys, hp, checkpoint=ckpt, on_checkpoint=kill, **kw)
    assert ckpt.exists()
    calls = []
    resumed = run_batched(prog, keys, hp, checkpoint=ckpt, on_checkpoint=lambda *a: calls.append(a), **kw)
    assert calls == [(2, 3)]                      # only the remaining epochs of the last chunk ran
    for name in ref.final:
        np.testing.assert_array_equal(resumed.final[name], ref.final[name])
    for name in ref.metrics:
        np.testing.assert_array_equal(resumed.metrics[name], ref.metrics[name])
    # a finished run reloads its outputs without training again
    again = run_batched(prog, keys, hp, checkpoint=ckpt, on_checkpoint=lambda *a: calls.append(a), **kw)
    assert calls == [(2, 3)]
    np.testing.assert_array_equal(again.final["alpha"], ref.final["alpha"])
    # another run's checkpoint is ignored (different seeds -> different fingerprint)
    other = run_batched(prog, trial_keys([5, 6, 7]), hp, checkpoint=ckpt, **kw)
    assert not np.array_equal(other.final["alpha"], ref.final["alpha"])


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "trials.csv"
    atomic_write_text(target, "old complete table\n")
    plain = tmp_path / "plain.txt"
    plain.write_text("x")                 # results get the permissions of any file the user writes
    assert target.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    plain.unlink()

    def crash(*a, **k):
        raise OSError("disk died mid-write")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError):
        atomic_write_text(target, "new table, half writ")
    assert target.read_text() == "old complete table\n"
    assert [p.name for p in tmp_path.iterdir()] == ["trials.csv"]      # no temp file left behind


@pytest.fixture(scope="module")
def table1():
    return load_script("run_table1")


@pytest.mark.parametrize("args,needle", [
    (["--preset", "huge"], "--preset"),
    (["--problems", "deblur"], "--problems"),
    (["--rows", "das_best"], "--rows"),
    (["--op-sets", "some"], "--op-sets"),
    (["--trials", "0"], "--trials"),
    (["--epochs", "-2"], "--epochs"),
    (["--width", "0"], "--width"),
    (["--batch-size", "0"], "--batch-size"),
    (["--hparams", "H9"], "--hparams"),
    (["--set", "noise_std=-1"], "noise_std"),
])
def test_bad_cli_input_is_one_line_exit_2(table1, tmp_path, capsys, args, needle):
    out = tmp_path / "out"
    code = table_runner.main_guard(table1.main, ["--preset", "smoke", "--out", str(out)] + args
                                        if "--preset" not in args else ["--out", str(out)] + args)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and needle in err, err
    assert not out.exists()                      # nothing written


def test_output_folder_checks(table1, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["--preset", "smoke", "--out", str(out), "--trials", "1", "--rows", "lg_only", "--problems", "blur",
            "--no-figures"] + TINY_CLI
    root_handlers = list(logging.getLogger().handlers)
    assert table_runner.main_guard(table1.main, base + ["-q"]) == 0
    # -q silences the console; run.log in the results folder keeps every record
    assert "[table1]" not in capsys.readouterr().out
    log = (out / "run.log").read_text()
    assert "INFO [table1] blur / lg_only: median arch PSNR" in log and "INFO [table1] writing to" in log
    assert logging.getLogger().handlers == root_handlers and logs.LOGGER.propagate   # no other logger touched
    assert [type(h) for h in logs.LOGGER.handlers] == [logging.NullHandler]
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.name != "run.log")
    # a different configuration in the same folder is refused, and nothing changes
    code = table_runner.main_guard(table1.main, base + ["--set", "width=6"])
    assert code == 2 and "different configuration" in capsys.readouterr().err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.name != "run.log") == before
    assert (out / "run.log").read_text() == log              # a refused run writes nothing, no log either
    # a folder written before a config field existed still resumes: the missing field reads its default
    for manifest in out.glob("runs/*/*/manifest.json"):
        manifest.unlink()                        # such a folder had no manifest either
    for f in [out / "run.json", *out.glob("runs/*/*/config.json")]:
        d = json.loads(f.read_text())
        fp = d if f.name == "run.json" else d["run"]
        del fp["config"]["space"]["lg_train_f"]
        f.write_text(json.dumps(d))
    assert table_runner.main_guard(table1.main, base) == 0
    assert "already done, skipped" in capsys.readouterr().out          # the default console shows it
    assert (out / "run.log").read_text().startswith(log) and "already done, skipped" in (out / "run.log").read_text()
    # ... unless --overwrite (here another hyperparameter set with the same optimizer types: a different
    # configuration whose retraining reuses the compiled program)
    assert table_runner.main_guard(table1.main, base + ["--hparams", "H2"]) == 2
    assert "different configuration" in capsys.readouterr().err
    assert table_runner.main_guard(table1.main, base + ["--hparams", "H2", "--overwrite"]) == 0
    assert json.loads((out / "run.json").read_text())["hparams"]["name"] == "H2"
    # an unwritable folder (a path below a regular file)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = table_runner.main_guard(table1.main, ["--preset", "smoke", "--out", str(blocker / "sub")])
    assert code == 2 and "not writable" in capsys.readouterr().err


def test_table1_smoke_end_to_end(run_all_smoke, table1, capsys):
    """run_table1.py as run_all's smoke runs it (every row on blur, 2 trials), then every output file;
    rerun, it skips every finished row."""
    out, printed = run_all_smoke["out"] / "table1", run_all_smoke["printed"]
    assert "| Op set | Method |" in printed and "(16.49," in printed     # paper value beside ours
    df = pd.read_csv(out / "trials.csv")
    assert len(df) == 16 and set(df["method"]) == {"Learnable Grad. only", "Nets only", "DAS", "Random Sampling",
                                                   "Random Search"}
    assert sorted(df.groupby(["op_set", "method"]).size().items()) == sorted(
        ((r.op_set, r.method), 2) for r in table1.ROWS)          # each row: 2 trials of its op set
    for op_set in ("good", "all"):
        rs = df[(df.method == "Random Sampling") & (df.op_set == op_set)].set_index("seed")["arch_psnr"]
        rsearch = df[(df.method == "Random Search") & (df.op_set == op_set)].set_index("seed")["arch_psnr"]
        assert len(rs) == 2 and (rsearch >= rs - 1e-6).all()      # the best of 5 includes the sampled one
    assert df[df.method == "DAS"]["one_shot_psnr"].notna().all()
    # the findings: every row ran, so the all-ops findings are measured too (a missing row's
    # "not measured": tests/test_analysis_findings.py::test_missing_rows_are_not_measured_and_bad_input_is_refused)
    assert "The paper's findings on these trials" in printed
    findings = pd.read_csv(out / "findings.csv").set_index("finding")["verdict"]
    assert findings["DAS > random sampling on all ops"] != "not measured"
    assert findings["random search >= DAS on good ops"] != "not measured"
    for f in ["table1.md", "table1.tex", "summary.csv", "wall_times.csv", "figures/fig3_scatter.png", "findings.md",
              "figures/fig6_scatter_no_degenerate_all.png", "figures/fig4_architectures_blur.png",
              "report/report.md", "runs/blur/das_good/arrays.npz", "runs/blur/das_good/config.json"]:
        assert (out / f).exists() and (out / f).stat().st_size > 0, f
    assert not (out / "runs/blur/das_good/checkpoint").exists()
    # rerunning the command run_all ran skips every finished row (without figures and report:
    # those of the first run are checked above)
    capsys.readouterr()
    assert table_runner.main_guard(table1.main, run_all_smoke["table1_argv"] + ["--no-figures"]) == 0
    assert capsys.readouterr().out.count("already done, skipped") == len(table1.ROWS)


def test_a_later_command_on_the_folder_keeps_its_earlier_rows(run_all_smoke, table1, tmp_path, capsys):
    """A folder filled by several commands (--problems blur after --problems downsampling, or --rows
    one part after another): the gathered trials.csv, wall_times.csv, tables and report hold every
    finished row of the folder, not only the last command's; a planned row not finished is named."""
    import shutil
    out = tmp_path / "t1"
    shutil.copytree(run_all_smoke["out"] / "table1", out)
    full = pd.read_csv(out / "trials.csv")
    from analysis import check
    check.write_plan(out, [out / "runs" / "blur" / "not_run"])            # planned by an earlier command
    argv = ["--preset", "smoke", "--out", str(out), "--trials", "2", "--problems", "blur", "--rows", "lg_only",
            "--no-figures"] + TINY_CLI
    capsys.readouterr()
    assert table_runner.main_guard(table1.main, argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("already done, skipped") == 1 and "left out of the tables: runs/blur/not_run" in printed
    again = pd.read_csv(out / "trials.csv")
    assert len(again) == len(full) == 16
    pd.testing.assert_frame_equal(again.sort_values("trial_id").reset_index(drop=True),
                                  full.sort_values("trial_id").reset_index(drop=True))
    assert len(pd.read_csv(out / "wall_times.csv")) == len(table1.ROWS)
    assert "| all ops. | Random Search |" in (out / "table1.md").read_text()


def test_table3_smoke_end_to_end(tmp_path, capsys):
    """run_table3.py with two sets of different optimizer types, one op set, 2 trials."""
    table3 = load_script("run_table3")
    out = tmp_path / "t3"
    # the second set comes from a JSON file, as run_hpo.py writes its incumbent (an Adam set)
    incumbent = tmp_path / "incumbent.json"
    incumbent.write_text(dasjax.hparams.get("BOHB-Blur").replace(name="HPO-one-shot-blur-all").to_json())
    args = ["--preset", "smoke", "--out", str(out), "--trials", "2", "--problems", "blur",
            "--op-sets", "all", "--sets", f"H1,{incumbent}", "--no-figures"] + TINY_CLI
    assert table_runner.main_guard(table3.main, args) == 0
    df = pd.read_csv(out / "trials.csv")
    assert sorted(df["hparams"].unique()) == ["H1", "HPO-one-shot-blur-all"] and len(df) == 4
    assert "| all ops. | H1 |" in (out / "table3.md").read_text()
    capsys.readouterr()
    assert table_runner.main_guard(table3.main, args + ["--sets", "H7"]) == 2
    # --hparams would be ignored by a table of several sets: refused, pointing at --sets
    assert table_runner.main_guard(table3.main, args + ["--hparams", str(incumbent)]) == 2
    assert "--sets H1," in capsys.readouterr().err


@pytest.fixture(scope="module")
def run_all_smoke(tmp_path_factory):
    """run_all.py --preset smoke on two tables, reduced to 2 trials on blur at the tiny shapes of the
    other tests here: the folder, what it printed, and the command line it gave run_table1.py.
    Table 1's smoke checks run on its OUT/table1 (every Table 1 row), not on a run of their own."""
    run_all = load_script("run_all")
    out = tmp_path_factory.mktemp("run_all") / "all"
    common = ["--preset", "smoke", "--trials", "2", "--problems", "blur"] + TINY_CLI
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = table_runner.main_guard(run_all.main, common + ["--tables", "table1,table3", "--out", str(out)])
    assert code == 0, printed.getvalue()[-3000:]
    table1_argv = ["--preset", "smoke", "--out", str(out / "table1"), "--trials", "2", "--problems", "blur"] + TINY_CLI
    return dict(out=out, printed=printed.getvalue(), table1_argv=table1_argv)


def test_run_all_smoke_end_to_end(run_all_smoke):
    """run_all.py's smoke run: the plan is printed first, then each table; report and wall times."""
    run_all = load_script("run_all")
    out, printed = run_all_smoke["out"], run_all_smoke["printed"]
    assert "estimated total" in printed and printed.index("estimated total") < printed.index("[table1]")
    assert "[table3]" in printed
    report = (out / "report.md").read_text()
    assert "Table 1" in report and "Table 3" in report
    walls = pd.read_csv(out / "wall_times.csv")
    assert list(walls["table"]) == ["table1", "table3"] and (walls["exit_code"] == 0).all()
    assert table_runner.main_guard(run_all.main, ["--tables", "table9"]) == 2


def test_table4_smoke_end_to_end(tmp_path, capsys, monkeypatch):
    """run_table4.py --preset smoke without a BSDS300 folder: it says so, runs on the embedded images,
    labels them NOT BSDS300 in log, records and title, and writes every output (figure included)."""
    monkeypatch.delenv("DASJAX_BSDS300", raising=False)
    table4 = load_script("run_table4")
    out = tmp_path / "t4"
    assert table_runner.main_guard(table4.main, ["--preset", "smoke", "--out", str(out), "--trials", "1",
                                                      "--set", "n_layers=2"]) == 0
    printed = capsys.readouterr().out
    assert "NOT BSDS300" in printed and "BSDS300-images.tgz" in printed        # says so, and where to get it
    assert "| DnCNN (Nets only) |" in printed and "Runtime (h:min:sec)" in printed
    df = pd.read_csv(out / "trials.csv")
    assert sorted(df["method"]) == ["DAS", "Nets only", "Random Sampling"]
    assert df["dataset"].str.contains("NOT BSDS300").all() and (df["problem"] == "image_denoise").all()
    assert df["arch_psnr"].notna().all() and df["one_shot_psnr"].notna().sum() == 1
    assert "NOT BSDS300" in (out / "table4.md").read_text().splitlines()[0]
    import json
    run = json.loads((out / "runs/image_denoise/das_good/config.json").read_text())["run"]
    assert run["config"]["problem"]["data_dir"] == "embedded"
    for f in ["table4.tex", "summary.csv", "wall_times.csv", "report/report.md",
              "figures/table4_examples_image_denoise.png", "runs/image_denoise/rs_good/arrays.npz"]:
        assert (out / f).exists() and (out / f).stat().st_size > 0, f
    # an existing folder without images: one line, exit 2, nothing written
    empty = tmp_path / "empty"
    empty.mkdir()
    code = table_runner.main_guard(table4.main, ["--preset", "smoke", "--out", str(tmp_path / "t4e"),
                                                      "--data-dir", str(empty)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "empty" in err and err.count("\n") == 0 and not (tmp_path / "t4e").exists()


def test_set_values_are_read_as_json_and_none_stays_a_choice():
    """--set reads JSON, true / false and none; "none" stays the string for a field whose choices
    are strings (merge_norm=none, cell_skip=none), and is None for an optional number."""
    got = table_runner.parse_set_items(["merge_norm=none", "cell_skip=none", "chunk_size=none", "width=16",
                                        "global_skip=false", "amplitude=[0.5, 1.5]", "x0=adjoint"])
    assert got == {"merge_norm": "none", "cell_skip": "none", "chunk_size": None, "width": 16,
                   "global_skip": False, "amplitude": [0.5, 1.5], "x0": "adjoint"}
    with pytest.raises(table_runner.UsageError, match="FIELD=VALUE"):
        table_runner.parse_set_items(["width"])


def test_config_file_reruns_a_saved_config_with_set_on_top(table1, tmp_path):
    """--config takes a run.json, a row's config.json or Config.to_json(); rows keep their problem
    and op set; --set goes on top; a file without a config is one clear error."""
    base = dasjax.make_config(problem="downsampling", op_set="all", width=6, noise_std=0.05, search_epochs=3,
                              algorithm="gdas", algorithm_options={"tau_min": 0.5})
    saved = {"run.json": {"config": base.science_dict()}, "config.json": {"run": {"config": base.science_dict()}},
             "cfg.json": json.loads(base.to_json())}
    parser = table_runner.build_parser(table1.__doc__, table1.ROWS)
    for name, content in saved.items():
        path = tmp_path / name
        path.write_text(json.dumps(content, default=list))
        args = parser.parse_args(["--preset", "smoke", "--config", str(path), "--set", "width=8"])
        _, overrides, *_ = table_runner.resolve(args, "table1", table1.ROWS, log=lambda *a: None)
        cfg = dasjax.make_config(problem="blur", op_set="good", **overrides)
        assert (cfg.space.width, cfg.problem.noise_std, cfg.search.epochs, cfg.search.algorithm) == (8, 0.05, 3, "gdas")
        assert dict(cfg.search.algorithm_options) == {"tau_min": 0.5} and cfg.problem.name == "blur"
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(table_runner.UsageError, match="no config sections"):
        table_runner.resolve(parser.parse_args(["--config", str(tmp_path / "bad.json")]), "table1", table1.ROWS)


def test_say_prints_without_logging_and_logs_with_it(capsys, monkeypatch):
    """Outside a command, a notebook that set up no logging still sees progress; once the user
    adds a handler, the records go there instead."""
    from dasjax import logs
    monkeypatch.setattr(logging.getLogger(), "handlers", [])     # no logging set up (pytest's own aside)
    logs.say("a progress line")
    assert capsys.readouterr().out == "a progress line\n"
    seen = []
    handler = logging.Handler()
    handler.emit = seen.append
    monkeypatch.setattr(logs.LOGGER, "handlers", [handler])
    logs.LOGGER.setLevel(logging.INFO)
    try:
        logs.say("to the user's handler")
    finally:
        logs.LOGGER.setLevel(logging.NOTSET)
    assert [r.getMessage() for r in seen] == ["to the user's handler"] and capsys.readouterr().out == ""
