"""One run over several processes (dasjax.distributed): the flags and environment, and a table runner
started as two local processes on loopback, whose results folder equals a single-process run's."""
import os
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import ROOT, TINY_CLI

from dasjax.distributed import ProcessGroup, process_group


def test_process_group_from_flags_environment_and_schedulers():
    assert process_group(environ={}) is None                                  # one process
    assert process_group("127.0.0.1:1234", 2, 1, environ={}) == ProcessGroup("127.0.0.1:1234", 2, 1)
    env = {"DASJAX_COORDINATOR": "node0:9999", "DASJAX_NUM_PROCESSES": "4", "DASJAX_PROCESS_ID": "3"}
    assert process_group(environ=env) == ProcessGroup("node0:9999", 4, 3)
    assert process_group(process_id=2, environ=env) == ProcessGroup("node0:9999", 4, 2)   # flags win
    assert process_group("h:1", 1, 0, environ={}) is None                      # a group of one is one process
    assert process_group(environ={"SLURM_NTASKS": "8", "SLURM_STEP_ID": "0"}) == ProcessGroup(auto=True)
    assert process_group(environ={"SLURM_NTASKS": "8"}) is None                # sbatch script, not srun
    assert process_group(environ={"OMPI_COMM_WORLD_SIZE": "2"}) == ProcessGroup(auto=True)
    with pytest.raises(ValueError, match="all three"):
        process_group("127.0.0.1:1234", environ={})
    with pytest.raises(ValueError, match="HOST:PORT"):
        process_group("localhost", 2, 0, environ={})
    with pytest.raises(ValueError, match="process-id"):
        process_group("h:1", 2, 2, environ={})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# a reduced Table 1 row: 2 trials x 30 epochs of 20 steps at the tiny shapes with one layer (long
# enough to be stopped in the middle: the first checkpoint comes after epoch 5, and 25 epochs are
# left as margin for the kill on a loaded machine; a few seconds after compiling)
T1 = ["experiments/run_table1.py", "--preset", "smoke", "--trials", "2", "--problems", "blur", "--rows", "lg_only",
      "--no-figures", "--epochs", "30"] + TINY_CLI + ["--set", "n_layers=1", "--set", "steps_per_epoch=20"]  # last --set wins
HPO = ["experiments/run_hpo.py", "--preset", "smoke", "--problems", "blur", "--op-sets", "good", "--width", "4",
       "--batch-size", "16", "--set", "n_layers=1", "--set", "steps_per_epoch=3", "--set", "eval_batches=2",
       "--iterations", "1", "--max-budget", "3", "--min-budget", "1", "--sampler", "random",
       "--fix", "alpha_optimizer=sgd", "--objective", "one-shot", "--no-figures"]
ENV = dict(os.environ, JAX_PLATFORMS="cpu", DASJAX_HEARTBEAT_S="5")


def _start(cmd, out, n=2, port=None):
    """``n`` processes of ``cmd`` on one loopback coordinator (n = 1: one process with 2 host devices,
    the same mesh as two processes with one device each)."""
    base = [sys.executable, *cmd, "--out", str(out)]
    if n == 1:
        argvs, devices = [base], "2"
    else:
        port = port or _free_port()
        argvs, devices = [base + ["--coordinator", f"127.0.0.1:{port}", "--num-processes", str(n),
                                  "--process-id", str(i)] for i in range(n)], "1"
    return [subprocess.Popen(argv, cwd=ROOT, env=dict(ENV, DASJAX_CPU_DEVICES=devices), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for argv in argvs]


def _finish(procs, timeout=300):
    """Wait for every process (killing what is left after ``timeout``): [(returncode, stdout, stderr)]."""
    try:
        outs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    return [(p.returncode, *o) for p, o in zip(procs, outs)]


def _files(d):
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())


def _psnr_columns(df):
    return df[[c for c in df.columns if "psnr" in c or c == "objective"]]


@pytest.fixture(scope="module")
def table1_runs(tmp_path_factory):
    """The reduced Table 1 row as one process (2 devices), and as two processes (1 device each) of
    which process 1 is killed once the first checkpoint is written, then the same command again,
    which completes the row: the folder of the two-process run ("two").  One interrupted-and-resumed
    two-process run serves both tests below (an uninterrupted one would recompute the same trials:
    its first epochs ran under two processes before the kill, the others after the resume)."""
    root = tmp_path_factory.mktemp("distributed")
    one, two = root / "one", root / "two"
    single = _finish(_start(T1, one, n=1))
    assert single[0][0] == 0, single[0][2][-1500:]
    procs = _start(T1, two, port=_free_port())
    ckpt = two / "runs" / "blur" / "lg_only" / "checkpoint"
    deadline = time.monotonic() + 240
    while not (ckpt.exists() and any(ckpt.iterdir())) and time.monotonic() < deadline and procs[0].poll() is None:
        time.sleep(0.05)
    procs[1].kill()
    killed_at = time.monotonic()
    killed = _finish(procs, timeout=120)
    stopped_after = time.monotonic() - killed_at
    finished_before_resume = (two / "runs" / "blur" / "lg_only" / "trials.csv").exists()
    resumed = _finish(_start(T1, two, port=_free_port()))
    return dict(one=one, two=two, killed=killed, stopped_after=stopped_after,
                finished_before_resume=finished_before_resume, resumed=resumed)


def test_two_processes_write_one_folder_equal_to_a_single_process_run(table1_runs):
    """Process 0 alone writes and reports; the trials, sharded over both processes' devices, equal
    the single-process run's digit for digit, and the folders hold the same files."""
    one, two, multi = table1_runs["one"], table1_runs["two"], table1_runs["resumed"]
    assert [r[0] for r in multi] == [0, 0], "\n".join(r[2][-1500:] for r in multi)
    assert "[table1] writing to" in multi[0][1] and "2 device(s) over 2 processes" in multi[0][1]
    assert "[table1]" not in multi[1][1]                             # progress and tables once, by the writer
    a, b = pd.read_csv(two / "trials.csv"), pd.read_csv(one / "trials.csv")
    assert len(a) == 2 and list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(_psnr_columns(a), _psnr_columns(b))
    assert _files(two) == _files(one)                               # same layout, no lock or checkpoint left


def test_a_killed_process_stops_the_other_and_the_same_command_resumes(table1_runs):
    """Process 1 is killed once the first checkpoint is written: process 0 stops with an error within
    the heartbeat timeout (5 s here) plus a margin, leaving the row unfinished; the same command
    then completes with the uninterrupted numbers."""
    (code0, _, err0), _ = table1_runs["killed"]
    assert table1_runs["stopped_after"] < 60
    assert code0 != 0 and "distributed service detected fatal errors" in err0, err0[-1500:]
    assert not table1_runs["finished_before_resume"]                # nothing marked finished
    again, one, two = table1_runs["resumed"], table1_runs["one"], table1_runs["two"]
    assert [r[0] for r in again] == [0, 0], again[0][2][-1500:]
    pd.testing.assert_frame_equal(_psnr_columns(pd.read_csv(two / "trials.csv")),
                                  _psnr_columns(pd.read_csv(one / "trials.csv")))


def test_hpo_over_two_processes_equals_one(tmp_path):
    """A reduced Hyperband run: every rung's evaluations spread over both processes give the
    single-process evaluations digit for digit, in the same folder layout."""
    single = _finish(_start(HPO, tmp_path / "one", n=1))
    multi = _finish(_start(HPO, tmp_path / "two"))
    assert [r[0] for r in single + multi] == [0, 0, 0], "\n".join(r[2][-1500:] for r in single + multi)
    a = pd.read_csv(tmp_path / "two" / "evaluations.csv")
    b = pd.read_csv(tmp_path / "one" / "evaluations.csv")
    assert len(a) == len(b) > 0
    pd.testing.assert_frame_equal(_psnr_columns(a), _psnr_columns(b))
    assert _files(tmp_path / "two") == _files(tmp_path / "one")
