"""Compile time of the test suite's tiny programs under XLA's default CPU flags and under the flags
tests/conftest.py sets, side by side (each in a fresh process, alternating, --repeats times).

    python benchmarks/compile_flags.py [--repeats 2]

Prints, per flag set, the median over the repeats of: the search (init + epochs + finalize) and the
retraining compile times reported by dasjax, and the whole call, and whether the PSNRs agree with
the defaults' to 1e-4 dB (docs/performance.md, "The test suite").
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ["DASJAX_TEST_XLA_FLAGS"] = "1"      # importing conftest for its flags leaves $XLA_FLAGS alone
sys.path.insert(0, str(ROOT / "tests"))
from conftest import TEST_XLA_FLAGS  # noqa: E402

CHILD = """
import json, sys, time
sys.path.insert(0, {tests!r})
from conftest import tiny          # $DASJAX_TEST_XLA_FLAGS is inherited: $XLA_FLAGS stays as given
import dasjax
cfg = tiny(op_set="all")
t = time.perf_counter()
s = dasjax.search(cfg, [0, 1], progress=False)
r = dasjax.retrain(cfg, s.architecture, [0, 1], progress=False)
print(json.dumps({{"search_compile_s": s.compile_time_s, "retrain_compile_s": r.compile_time_s,
                  "total_s": time.perf_counter() - t, "arch_psnr": [float(x) for x in r.arch_psnr]}}))
"""

FLAG_SETS = {
    "XLA defaults": "",
    "tests/conftest.py": " ".join(TEST_XLA_FLAGS),
    "older emitters only": "--xla_cpu_use_fusion_emitters=false",
}


def run(flags: str) -> dict:
    env = dict(os.environ, XLA_FLAGS=flags, DASJAX_CPU_DEVICES="1", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", CHILD.format(tests=str(ROOT / "tests"))], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    rows = {name: [] for name in FLAG_SETS}
    for _ in range(args.repeats):
        for name, flags in FLAG_SETS.items():
            rows[name].append(run(flags))
    ref = rows["XLA defaults"][0]["arch_psnr"]
    print(f"{'flags':22s} {'search compile':>15s} {'retrain compile':>16s} {'whole call':>11s}  same PSNRs")
    for name, rs in rows.items():
        med = {k: statistics.median(r[k] for r in rs) for k in ("search_compile_s", "retrain_compile_s", "total_s")}
        same = all(abs(a - b) < 1e-4 for r in rs for a, b in zip(r["arch_psnr"], ref))
        print(f"{name:22s} {med['search_compile_s']:14.1f}s {med['retrain_compile_s']:15.1f}s "
              f"{med['total_s']:10.1f}s  {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
