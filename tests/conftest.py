"""Shared tiny configurations; compiled programs are reused through module-scoped fixtures."""
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

# Compile flags for the suite's tiny programs, whose run time is nothing beside their compile time
# (docs/performance.md, "The test suite"):
# - XLA's older CPU emitters: the MLIR fusion emitters (the default) spend a large share of a tiny
#   program's compile time building one MLIR context per fusion; the older ones take about two
#   thirds of the time;
# - LLVM optimisation level 0 for every compile, the tests' own jits included (the engine's
#   programs already ask for it with fast_compile=True): about half the time for a big test jit.
# The workers and every subprocess a test starts inherit them.  XLA aborts on a flag it does not
# know, so the first process (pytest's own) keeps only those its jaxlib accepts, and says so.
TEST_XLA_FLAGS = ["--xla_cpu_use_fusion_emitters=false", "--xla_backend_optimization_level=0"]
_CHECKED = "DASJAX_TEST_XLA_FLAGS"          # set once the flags are checked: the others inherit them


def _accepted(flags: list) -> bool:
    """Whether a process with these XLA flags starts its CPU backend (run apart: an unknown flag aborts)."""
    import subprocess
    env = dict(os.environ, XLA_FLAGS=" ".join(flags), JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-c", "import jax; jax.devices()"], env=env,
                          capture_output=True).returncode == 0


if _CHECKED not in os.environ:
    _flags = os.environ.get("XLA_FLAGS", "").split()
    _new = [f for f in TEST_XLA_FLAGS if f not in _flags]
    if _new and not _accepted(_flags + _new):
        _new = [f for f in _new if _accepted(_flags + [f])]
        print(f"tests/conftest.py: this jaxlib takes only {_new} of the test compile flags {TEST_XLA_FLAGS}",
              file=sys.stderr)
    os.environ["XLA_FLAGS"] = " ".join(_flags + _new)
    os.environ[_CHECKED] = "1"
# one CPU device in-process, as before dasjax spread trials over the cores: tiny programs are all
# overhead, and two pytest workers already use both cores.  The multi-device paths run in
# subprocesses (tests/test_sharding.py).
os.environ.setdefault("DASJAX_CPU_DEVICES", "1")
import jax  # noqa: E402
import pytest  # noqa: E402

import dasjax  # noqa: E402

jax.config.update("jax_enable_x64", False)
# experiments/ on the path: tests load its scripts (load_script) and calibrate.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

_XLA_CACHE = {"JAX_COMPILATION_CACHE_DIR": None, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
              "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


def pytest_configure(config):
    """One XLA compilation cache on disk for the whole run, shared by the xdist workers and by the
    subprocesses tests start: most of a tiny test's time is compiling, and the same programs (and
    eager primitives) recur across processes.  Fresh per run, so CI and a local run pay the same."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False   # keep the order pytest_collection_modifyitems sets
    if hasattr(config, "workerinput") or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return                                   # a worker (inherits the controller's), or the user's own
    folder = tempfile.mkdtemp(prefix="dasjax-tests-xla-cache-")
    config._dasjax_xla_cache = folder
    os.environ.update({k: v or folder for k, v in _XLA_CACHE.items()})
    # this process imported jax already: the variables only reach the workers and subprocesses
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


# The modules that take longest, slowest first (pytest --durations=0 alone on 2 cores, 2026-12-08:
# 30-120 s each; docs/performance.md, "The test suite").  xdist's loadscope hands whole modules to
# the two workers in collection order; sending these first leaves only short modules for the end,
# so the workers finish together.  (xdist's own reordering, by number of tests, sends the
# four-test, two-minute test_distributed.py late.)
SLOWEST_MODULES = ("test_distributed.py", "test_curvature.py", "test_runner.py", "test_cell.py",
                   "test_algorithms.py", "test_config.py", "test_search.py", "test_sharding.py",
                   "test_registries.py", "test_hpo.py", "test_ops.py", "test_hparams.py", "test_wheel.py",
                   "test_analysis_docs.py", "test_notebook.py")


def pytest_collection_modifyitems(config, items):
    """The slowest modules first (SLOWEST_MODULES), each module's tests in their own order."""
    rank = {name: i for i, name in enumerate(SLOWEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))       # stable: keeps each module's order


def pytest_unconfigure(config):
    folder = getattr(config, "_dasjax_xla_cache", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def tiny(**kw):
    """A few-second config: width 4, 3 layers, batch 16, 2 epochs x 3 steps."""
    base = dict(width=4, n_layers=3, batch_size=16, steps_per_epoch=3, epochs=2, eval_batches=2,
                progress=False, fast_compile=True, chunk_size=64,
                trials_at_once=64)   # 64 >= T: exercise the vmapped path (the accelerator default)
    base.update(kw)
    return dasjax.make_config(**base)


# the harmful-op readings before calibration stage 5 (signal-axis roll, noise std 0.10 added after
# the step): for the toy tests whose seeds or dynamics were built under them
HARMFUL_OPS_BEFORE_STAGE5 = dict(roll_axes="signal", noise_layer_std=0.10, noise_form="additive")

# the problem readings before calibration stage 7 (centred blur, x0 = y): for the toy tests whose
# seeds were chosen under them
PROBLEM_BEFORE_STAGE7 = dict(blur_alignment="centred", x0="data")


# the tiny() shapes as runner flags, for the runner tests that check the pipeline, not the preset
TINY_CLI = ["--set", "width=4", "--set", "batch_size=16", "--set", "n_layers=3", "--set", "steps_per_epoch=3"]


@pytest.fixture(scope="session")
def tiny_cfg():
    return tiny(op_set="all")


ROOT = Path(__file__).resolve().parents[1]


def load_script(name, folder="experiments"):
    """Import <folder>/<name>.py as a module (its main(argv) is then callable in-process).  A runner,
    experiments/run_<name>.py, is a wrapper of dasjax.runners.<name>: that module is returned, with
    its rows and helpers (tests/test_packaging.py checks the wrappers)."""
    if folder == "experiments" and name.startswith("run_"):
        return importlib.import_module(f"dasjax.runners.{name[len('run_'):]}")
    spec = importlib.util.spec_from_file_location(name, ROOT / folder / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
