"""Shared tiny configurations; compiled programs are reused through module-scoped fixtures."""
import importlib.util
import os
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "")
import jax  # noqa: E402
import pytest  # noqa: E402

import dasjax  # noqa: E402

jax.config.update("jax_enable_x64", False)


def tiny(**kw):
    """A few-second config: width 4, 3 layers, batch 16, 2 epochs x 3 steps."""
    base = dict(width=4, n_layers=3, batch_size=16, steps_per_epoch=3, epochs=2, eval_batches=2,
                progress=False, fast_compile=True, chunk_size=64)   # 64 >= T: exercise the vmapped path
    base.update(kw)
    return dasjax.make_config(**base)


@pytest.fixture(scope="session")
def tiny_cfg():
    return tiny(op_set="all")


ROOT = Path(__file__).resolve().parents[1]


def load_script(name, folder="experiments"):
    """Import <folder>/<name>.py as a module (its main(argv) is then callable in-process)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / folder / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
