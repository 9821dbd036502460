"""The wheel, installed outside the repository, runs a table and reports it: everything a runner
needs ships in it.

The wheel is built from this checkout and installed into a fresh virtual environment in a temporary
folder; the environment sees this interpreter's site-packages for the dependencies (jax, ...) through a
path entry, which does not run their .pth hooks, so the editable install of the checkout stays out of
sight.  ``dasjax table1`` then runs from a folder outside the repository."""
import importlib.metadata
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pandas as pd

from conftest import ROOT, TINY_CLI


def _run(argv, cwd, timeout=600):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}     # nothing of the checkout
    out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{argv}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out.stdout


def _setuptools_builds_it() -> bool:
    """Whether this interpreter's setuptools meets pyproject's build requirement (then no download)."""
    try:
        major = int(importlib.metadata.version("setuptools").split(".")[0])
    except importlib.metadata.PackageNotFoundError:
        return False
    return major >= 68


def test_the_installed_wheel_runs_table1_outside_the_repository(tmp_path):
    isolation = ["--no-build-isolation"] if _setuptools_builds_it() else []
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", *isolation, "-w", str(tmp_path / "dist"),
          str(ROOT)], cwd=tmp_path)
    wheel, = (tmp_path / "dist").glob("dasjax-*.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path)
    (Path(site.strip()) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", "--no-index", str(wheel)],
         cwd=tmp_path)

    where = _run([str(python), "-c", "import dasjax, analysis, dasjax.runners.estimate as e; "
                  "print(dasjax.__file__); print(analysis.__file__); print(len(e.packaged_step_times()))"],
                 cwd=tmp_path).split()
    assert all(str(venv) in w for w in where[:2]), where           # the wheel's code, not the checkout's
    assert int(where[2]) >= 2                                        # dasjax all's time estimate ships

    out = tmp_path / "results"
    _run([str(venv / "bin" / "dasjax"), "table1", "--preset", "smoke", "--problems", "blur",
          "--rows", "lg_only,nets_only", "--trials", "2", "--no-figures", "--out", str(out), *TINY_CLI],
         cwd=tmp_path)
    df = pd.read_csv(out / "trials.csv")
    assert sorted(df["method"].unique()) == ["Learnable Grad. only", "Nets only"] and len(df) == 4
    assert "complete" in _run([str(venv / "bin" / "dasjax"), "check", str(out)], cwd=tmp_path)
    _run([str(venv / "bin" / "dasjax"), "report", str(out), "--out", str(tmp_path / "report"), "--no-figures",
          "--n-resamples", "100", "--reference", "table1"], cwd=tmp_path)
    assert "Nets only" in (tmp_path / "report" / "report.md").read_text()
