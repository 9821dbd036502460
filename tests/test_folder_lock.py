"""One writer per results folder (analysis/folder_lock.py): refused while the owner lives,
taken over when it is gone, given back when the runner's main returns.  No program is compiled."""
import json
import os
import socket
import subprocess
import sys

from analysis import folder_lock
import pytest
from dasjax.runners import common as table_runner  # the runners' shared machinery
from conftest import load_script


def _lock_as(folder, pid, host=None):
    (folder / folder_lock.LOCK_NAME).write_text(json.dumps(
        {"host": host or socket.gethostname(), "pid": pid, "started": "2026-12-01 10:00:00"}))


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_live_owner_is_refused_a_gone_one_taken_over(tmp_path):
    _lock_as(tmp_path, os.getppid())                      # the pytest parent: alive
    with pytest.raises(folder_lock.FolderBusy, match=f"pid {os.getppid()}"):
        folder_lock.acquire(tmp_path)
    _lock_as(tmp_path, os.getppid(), host="elsewhere")   # another host: cannot be checked, say what to delete
    with pytest.raises(folder_lock.FolderBusy, match="delete"):
        folder_lock.acquire(tmp_path)
    dead = _dead_pid()
    _lock_as(tmp_path, dead)
    said = []
    mark = folder_lock.held()
    path = folder_lock.acquire(tmp_path, log=said.append)
    assert "taking over" in said[0] and str(dead) in said[0]
    assert json.loads(path.read_text())["pid"] == os.getpid()
    assert folder_lock.acquire(tmp_path) == path                # ours: a second call in-process is fine
    folder_lock.release_since(mark)
    assert not path.exists()


def test_a_second_run_on_a_locked_folder_exits_2_naming_the_owner(tmp_path, capsys):
    table1 = load_script("run_table1")
    out = tmp_path / "out"
    out.mkdir()
    _lock_as(out, os.getppid())
    code = table_runner.main_guard(table1.main, ["--preset", "smoke", "--out", str(out), "--rows", "lg_only"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "in use by another run" in err and str(os.getppid()) in err
    assert sorted(p.name for p in out.iterdir()) == [folder_lock.LOCK_NAME]        # nothing written


def test_main_guard_gives_the_lock_back(tmp_path):
    def main(argv):
        folder_lock.acquire(tmp_path)
        assert (tmp_path / folder_lock.LOCK_NAME).exists()
        raise table_runner.UsageError("stop here")
    assert table_runner.main_guard(main, []) == 2
    assert not (tmp_path / folder_lock.LOCK_NAME).exists()
