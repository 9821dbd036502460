"""One run over several processes (dasjax.distributed): the flags and environment, and a table runner
started as two local processes on loopback, whose results folder equals a single-process run's."""
import os
import socket
import subprocess
import sys

import pandas as pd
import pytest
from conftest import ROOT, TINY_CLI, load_script

import table_runner
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


ARGS = ["--preset", "smoke", "--trials", "3", "--problems", "blur", "--rows", "lg_only", "--no-figures"] + TINY_CLI


def test_two_processes_write_one_folder_equal_to_a_single_process_run(tmp_path, capsys):
    """Two local processes over loopback: process 0 alone writes and reports; the trials (sharded
    over both processes' devices) equal a single-process run's, and the folders hold the same files."""
    port, multi = _free_port(), tmp_path / "two"
    env = dict(os.environ, DASJAX_CPU_DEVICES="1", JAX_PLATFORMS="cpu")
    procs = [subprocess.Popen([sys.executable, "experiments/run_table1.py", *ARGS, "--out", str(multi),
                               "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    try:
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert [p.returncode for p in procs] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    assert "[table1] writing to" in outs[0][0] and "2 device(s)" in outs[0][0]
    assert "[table1]" not in outs[1][0]                              # progress and tables once, by the writer
    single = tmp_path / "one"
    assert table_runner.main_guard(load_script("run_table1").main, ARGS + ["--out", str(single)]) == 0
    capsys.readouterr()
    a, b = pd.read_csv(multi / "trials.csv"), pd.read_csv(single / "trials.csv")
    assert list(a.columns) == list(b.columns) and len(a) == 3
    assert (a["arch_psnr"] - b["arch_psnr"]).abs().max() < 1e-4
    files = lambda d: sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())  # noqa: E731
    assert files(multi) == files(single)                            # same layout, no lock or checkpoint left
