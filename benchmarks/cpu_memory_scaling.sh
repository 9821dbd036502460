#!/usr/bin/env bash
# Does streaming over an array scale from one core to two?  One single-threaded numpy process
# (a *= 1.0001 over an array of the given size, read + write counted), then two at once pinned to
# cores 0 and 1.  Working sets that fit a core's cache scale; larger ones compete for the shared
# L3 cache and memory bandwidth (issue #5; docs/performance.md).  Linux (taskset).
# Output: docs/results/cpu_memory_scaling.txt
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
PROG='import numpy as np, sys, time
mib = int(sys.argv[1]); a = np.ones(mib * 2**20 // 4, np.float32); n = max(1, 30000 // mib)
t = time.perf_counter()
for _ in range(n): a *= 1.0001
print(f"{mib:4d} MiB: {2 * a.nbytes * n / (time.perf_counter() - t) / 1e9:6.1f} GB/s")'
for mib in 1 4 12 64; do
  echo "== $mib MiB, one process";  python -c "$PROG" $mib
  echo "== $mib MiB, two processes on cores 0 and 1"
  taskset -c 0 python -c "$PROG" $mib & taskset -c 1 python -c "$PROG" $mib; wait
done
