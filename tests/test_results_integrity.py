"""Results folders that survive damage and full disks (issue #42): every finished row is verified
before it is trusted, a damaged one is named, moved aside and recomputed, a file-system error is
one line with the command that resumes, and ``python -m analysis check`` lists each row's state."""
import errno
import json
import os
import shutil

import pandas as pd
import pytest
from conftest import TINY_CLI, load_script

from dasjax.runners import common as table_runner  # the runners' shared machinery
from analysis import check, folder_lock
from analysis.__main__ import main as analysis_main
from analysis.files import EXIT_MACHINE, MANIFEST_FILE, atomic_save_figure, manifest_problem

ROWS = ["runs/blur/lg_only", "runs/blur/nets_only"]


def _args(out):
    return ["--preset", "smoke", "--out", str(out), "--trials", "2", "--rows", "lg_only,nets_only",
            "--problems", "blur", "--no-figures"] + TINY_CLI


@pytest.fixture(scope="module")
def table1():
    return load_script("run_table1")


WRITES = []      # the fsync calls of the undamaged run: every results write ends in one


@pytest.fixture(scope="module")
def finished(table1, tmp_path_factory):
    """One undamaged tiny run (two retraining-only rows); tests damage copies of it."""
    out = tmp_path_factory.mktemp("integrity") / "t1"
    real_fsync = os.fsync

    def counting(fd):
        WRITES.append(fd)
        return real_fsync(fd)

    os.fsync = counting
    try:
        assert table_runner.main_guard(table1.main, _args(out)) == 0
    finally:
        os.fsync = real_fsync
    return out


def _copy(finished, tmp_path):
    out = tmp_path / "t1"
    shutil.copytree(finished, out)
    return out


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_a_finished_row_has_a_manifest_that_matches(finished):
    for row in ROWS:
        manifest = json.loads((finished / row / MANIFEST_FILE).read_text())
        assert set(manifest["files"]) == {"trials.csv", "config.json", "arrays.npz"} and manifest["trials"] == 2
        assert manifest_problem(finished / row) is None
    states = check.check_results(finished)
    assert [s.state for s in states] == ["complete"] * 3        # two rows and the gathered table


@pytest.mark.parametrize("name,damage,needle", [
    ("trials.csv", _truncate, "trials.csv has"),
    ("arrays.npz", lambda p: p.write_bytes(b"PK\x03\x04" + p.read_bytes()[4:][::-1]), "arrays.npz differs"),
    ("config.json", lambda p: _truncate(p, 0.9), "config.json has"),
    (MANIFEST_FILE, _truncate, "manifest.json is not valid JSON"),
])
def test_a_damaged_row_is_named_moved_aside_and_recomputed(table1, finished, tmp_path, capsys, name, damage,
                                                          needle):
    out = _copy(finished, tmp_path)
    damage(out / ROWS[0] / name)
    # the analysis refuses the folder with one line naming the file
    assert analysis_main([str(out), "--out", str(tmp_path / "report"), "--no-figures"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and needle in err and "lg_only" in err, err
    # check lists it, and exits 1
    assert analysis_main(["check", str(out)]) == 1
    listed = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()[:-1]}
    assert listed[ROWS[0]] == "damaged" and listed[ROWS[1]] == "complete", listed
    # the rerun names it, moves it aside and computes it again: the same trials as the undamaged run
    assert table_runner.main_guard(table1.main, _args(out)) == 0
    said = capsys.readouterr().out
    assert f"blur / lg_only: damaged ({needle}" in said and "already done, skipped" in said, said
    aside = list((out / "damaged").glob(f"*/{ROWS[0]}/{name}"))
    assert len(aside) == 1                                               # kept, not deleted
    pd.testing.assert_frame_equal(_trials(out), _trials(finished))
    assert analysis_main(["check", str(out)]) == 0


def _trials(out):
    return pd.read_csv(out / "trials.csv").drop(columns=["wall_time_s"])


def test_a_row_cut_at_a_line_break_without_manifest_is_caught_by_its_count(table1, finished, tmp_path, capsys):
    """A row written before manifests: the trial count in its config.json catches the lost trial."""
    out = _copy(finished, tmp_path)
    row = out / ROWS[1]
    (row / MANIFEST_FILE).unlink()
    lines = (row / "trials.csv").read_text().splitlines(keepends=True)
    (row / "trials.csv").write_text("".join(lines[:-1]))                # whole lines: parses fine
    assert check.row_state(row, out).state == "damaged"
    assert table_runner.main_guard(table1.main, _args(out)) == 0
    assert "nets_only: damaged (trials.csv has 1 trials, config.json says 2)" in capsys.readouterr().out
    pd.testing.assert_frame_equal(_trials(out), _trials(finished))


def test_check_names_running_interrupted_and_missing_rows(finished, tmp_path, capsys):
    out = _copy(finished, tmp_path)
    shutil.rmtree(out / ROWS[0])
    (out / ROWS[0] / "checkpoint").mkdir(parents=True)
    check.write_plan(out, [out / "runs/downsampling/lg_only"])
    states = {s.path.relative_to(out).as_posix(): s.state for s in check.check_results(out)}
    assert states == {ROWS[0]: "interrupted", ROWS[1]: "complete", "runs/downsampling/lg_only": "missing", ".": "complete"}
    mark = folder_lock.held()
    folder_lock.acquire(out)                                            # a live run holds the folder
    try:
        assert check.row_state(out / ROWS[0], out).state == "running"
    finally:
        folder_lock.release_since(mark)
    assert analysis_main(["check", str(out)]) == 0                      # nothing damaged
    assert capsys.readouterr().out.splitlines()[-1] == "2 complete, 1 interrupted, 1 missing"


def test_a_full_disk_is_one_line_exit_3_and_the_resumed_run_matches(table1, finished, tmp_path, capsys,
                                                                   monkeypatch):
    """A write that raises ENOSPC half-way through the run (every results write ends in fsync)."""
    real_fsync, calls, n_writes = os.fsync, [], len(WRITES)
    assert n_writes > 4

    def full_disk(fd):
        calls.append(fd)
        if len(calls) > n_writes // 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    capsys.readouterr()
    monkeypatch.setattr(os, "fsync", full_disk)
    out = tmp_path / "t1"
    assert table_runner.main_guard(table1.main, _args(out), program="experiments/run_table1.py") == EXIT_MACHINE
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "no space left on device" in err and "rows complete" in err, err
    assert f"Resume with: python experiments/run_table1.py --preset smoke --out {out}" in err, err
    assert not list(out.rglob("*.tmp"))                                 # no half-written file stays behind
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert table_runner.main_guard(table1.main, _args(out)) == 0
    pd.testing.assert_frame_equal(_trials(out), _trials(finished))


def test_figures_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    from matplotlib.figure import Figure
    fig = Figure()
    fig.add_subplot().plot([0, 1])
    path = atomic_save_figure(fig, tmp_path / "f.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))
    with pytest.raises(OSError) as err:
        atomic_save_figure(fig, tmp_path / "g.png")
    assert err.value.filename == str(tmp_path / "g.png")               # the error names the figure
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]


def test_a_folder_removed_mid_run_is_one_line_exit_3(table1, tmp_path, capsys, monkeypatch):
    out = tmp_path / "t1"
    real = table_runner.run_methods

    def remove_then_run(*a, **k):
        shutil.rmtree(out)                       # the user deletes the results folder during the first row
        return real(*a, **k)

    monkeypatch.setattr(table_runner, "run_methods", remove_then_run)
    assert table_runner.main_guard(table1.main, _args(out)) == EXIT_MACHINE
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "was removed during the run" in err and "Resume with:" in err, err
