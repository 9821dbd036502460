#!/usr/bin/env bash
# Wall time of a reduced Table 1 row at the cpu preset's full width and epochs (2 trials of
# Learnable-Grad-only on blur) as one process with 2 host devices and as 2 processes with 1 device
# each (loopback coordinator), side by side; prints one CSV line per way and checks the PSNRs agree.
# Usage: bash benchmarks/distributed_processes.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/dasjax-distributed-bench}
rm -rf "$OUT"; mkdir -p "$OUT"
ARGS=(--preset cpu --trials 2 --problems blur --rows lg_only --no-figures)
t0=$(date +%s.%N)
DASJAX_CPU_DEVICES=2 python experiments/run_table1.py "${ARGS[@]}" --out "$OUT/one" > "$OUT/one.log" 2>&1
t1=$(date +%s.%N)
PORT=$(python -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
for i in 0 1; do
  DASJAX_CPU_DEVICES=1 python experiments/run_table1.py "${ARGS[@]}" --out "$OUT/two" \
    --coordinator 127.0.0.1:$PORT --num-processes 2 --process-id $i > "$OUT/two_$i.log" 2>&1 &
  pids[$i]=$!
done
wait ${pids[0]} ${pids[1]}
t2=$(date +%s.%N)
echo "way,processes,devices_per_process,wall_s"
python - "$t0" "$t1" "$t2" "$OUT" <<'PY'
import sys, pandas as pd
t0, t1, t2, out = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
print(f"one process,1,2,{t1 - t0:.1f}")
print(f"two processes,2,1,{t2 - t1:.1f}")
a, b = pd.read_csv(f"{out}/one/trials.csv"), pd.read_csv(f"{out}/two/trials.csv")
print("# max |arch_psnr difference| (dB):", float((a.arch_psnr - b.arch_psnr).abs().max()))
PY
