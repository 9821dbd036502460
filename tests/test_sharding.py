"""Multiple devices: the trial axis sharded over a mesh gives the single-device results, padding
included, whether each device maps over its trials or vmaps them; one host device per core on
import; memory-based chunk sizing; clear errors.  Multi-device runs happen in a subprocess with
XLA_FLAGS=--xla_force_host_platform_device_count=4 (the flag must be set before jax starts)."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import pytest

import dasjax
from dasjax.batch import default_chunk_size, fit_chunk, resolve_devices

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np, jax
    sys.path.insert(0, {tests!r})
    import dasjax
    from conftest import tiny
    cfg = tiny(op_set="all", n_layers=1)            # every op (the batch-axis roll too), 1 layer: compiles faster
    seeds = [0, 1, 2, 3, 4]                         # 5 trials on 4 devices: padded (to 8, or 4 + 4)
    one = dasjax.search(cfg.replace(devices=1, chunk_size=5), seeds, progress=False)
    # the CPU default: chunks of one trial per device (vmapped), the last chunk padded
    four = dasjax.search(cfg.replace(devices=4, chunk_size=None, trials_at_once=None), seeds, progress=False)
    # one chunk of 8: each device maps over its 2 trials, one at a time
    four_m = dasjax.search(cfg.replace(devices=4, chunk_size=8, trials_at_once=1), seeds, progress=False)
    # a lone trial with devices=4 keeps that placement (padded to 4, the same compiled program), as an
    # adaptive run's small chunks do: its numbers are those of the same trial in the run of 5
    lone = dasjax.search(cfg.replace(devices=4, chunk_size=None, trials_at_once=None), [seeds[2]], progress=False)
    from dasjax import batch
    shards = sorted({{c.n_devices for c in batch._CACHE.values()}})
    at_once = sorted({{str(c.at_once) for c in batch._CACHE.values()}})
    print(json.dumps({{
        "devices": jax.local_device_count(), "compiled_for": shards, "at_once": at_once,
        "alpha": max(float(np.abs(one.alpha_softmax - f.alpha_softmax).max()) for f in (four, four_m)),
        "one_shot": max(float(np.abs(one.one_shot_psnr - f.one_shot_psnr).max()) for f in (four, four_m)),
        "lone": float(np.abs(lone.alpha_softmax[0] - four.alpha_softmax[2]).max()),
        "n": [len(four.one_shot_psnr), len(four_m.one_shot_psnr), len(lone.one_shot_psnr)],
        "programs": sorted({{(c.n_devices, c.n_trials, str(c.at_once)) for c in batch._CACHE.values()}})}}))
""")


def test_sharded_trials_equal_single_device(tmp_path):
    """Search only: retraining goes through the same run_batched sharding and padding.  (Also the import's rule that a device count the user set in XLA_FLAGS wins over
    $DASJAX_CPU_DEVICES: 4 devices here with DASJAX_CPU_DEVICES=3.)"""
    env = dict(os.environ, XLA_FLAGS=os.environ["XLA_FLAGS"] + " --xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu", DASJAX_CPU_DEVICES="3")
    script = SCRIPT.format(tests=str(ROOT / "tests"))
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["devices"] == 4 and r["compiled_for"] == [1, 4]
    assert r["at_once"] == ["1", "None"]              # lax.map over each device's trials, and one vmap
    assert r["n"] == [5, 5, 1]                        # the padding trials are dropped
    # chunks: 5 trials on one device; 4 (one per device, the CPU default); 8 mapped, 2 per device
    assert r["programs"] == [[1, 5, "None"], [4, 4, "None"], [4, 8, "1"]]
    assert r["alpha"] < 1e-5 and r["one_shot"] < 1e-4 and r["lone"] == 0.0


def _device_count(code="import dasjax, jax; print(jax.local_device_count())", **env):
    base = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "DASJAX_CPU_DEVICES")}
    out = subprocess.run([sys.executable, "-c", code], env=dict(base, JAX_PLATFORMS="cpu", **env), cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    return out.stdout.strip().splitlines()[-1] if out.returncode == 0 else "error: " + out.stderr[-500:]


def test_import_gives_one_host_device_per_core():
    """import dasjax makes JAX's CPU backend one device per usable core ($DASJAX_CPU_DEVICES), unless
    the user chose already (XLA_FLAGS) or JAX had started computing before the import."""
    from dasjax._devices import requested_cpu_devices, usable_cores
    assert _device_count() == str(usable_cores())
    assert _device_count(DASJAX_CPU_DEVICES="3") == "3"
    # XLA_FLAGS's device count wins over $DASJAX_CPU_DEVICES: checked by test_sharded_trials_equal_single_device
    # (its subprocess runs with both), which saves a process start here
    assert _device_count("import jax; jax.numpy.ones(1).block_until_ready(); import dasjax; "
                         "print(jax.local_device_count())", DASJAX_CPU_DEVICES="3") == "1"
    # the import reads the variable through requested_cpu_devices first, so its errors are the import's
    assert requested_cpu_devices("auto") == usable_cores() and requested_cpu_devices(" 2 ") == 2
    for bad in ("two", "0"):
        with pytest.raises(ValueError, match="DASJAX_CPU_DEVICES.*positive integer"):
            requested_cpu_devices(bad)


def test_fit_chunk_from_the_memory_estimate():
    gib = 2 ** 30
    assert fit_chunk(64, 10 * gib, 40 * gib, 1) == 64          # fits: unchanged
    assert fit_chunk(64, 10 * gib, None, 1) == 64              # no budget known (CPU)
    assert fit_chunk(100, 50 * gib, 20 * gib, 1) == 40         # 0.5 GiB per trial -> 40 trials
    # per-device estimate: 100 trials on 4 devices = 25 per device at 2 GiB each
    assert fit_chunk(100, 50 * gib, 20 * gib, 4) == 40         # 10 per device x 4
    assert fit_chunk(100, 50 * gib, 1 * gib, 4) == 4           # never below one trial per device


def test_default_chunk_is_one_group_per_device_on_the_cpu():
    """On the CPU a chunk is trials_at_once trials per device (each core runs its own trial, no
    lax.map); on an accelerator it is all trials (run_batched then fits it to memory)."""
    from dasjax.placement import default_trials_at_once
    assert default_chunk_size(75, 2, 1, "cpu") == 2 and default_chunk_size(75, 2, None, "cpu") == 2
    assert default_chunk_size(75, 4, 3, "cpu") == 12 and default_chunk_size(1, 2, 1, "cpu") == 1
    assert default_chunk_size(75, 2, None, "gpu") == 75 and default_chunk_size(75, 4, 3, "gpu") == 75
    assert default_trials_at_once("cpu") == 1 and default_trials_at_once("gpu") is None


def test_device_count_is_checked():
    """None: every device, never more than the trials; a number: exactly that many."""
    assert resolve_devices(None, 3) == min(jax.local_device_count(), 3)
    assert resolve_devices(1, 10) == 1 and resolve_devices(jax.local_device_count(), 1) == jax.local_device_count()
    with pytest.raises(ValueError, match="local device"):
        resolve_devices(jax.local_device_count() + 1, 10)
    with pytest.raises(ValueError, match="devices"):
        dasjax.make_config(devices=0)
