#!/usr/bin/env bash
# Can two trials on two cores beat the loop on this CPU?  One trial per process, XLA single-threaded,
# each process pinned to one core, both at once; compared with one process (default threads, then
# single-threaded).  Output: docs/results/cpu_two_processes.txt (issue #5).
cd "$(dirname "$0")/.."
B="python benchmarks/trials.py --trials 1 --stages search,retrain --reps 3"
echo "== default threads"; $B 2>&1 | grep -E "^(search|retrain) "
ST="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
echo "== single-threaded"; XLA_FLAGS="$ST" $B 2>&1 | grep -E "^(search|retrain) "
echo "== two single-threaded processes at once"
XLA_FLAGS="$ST" taskset -c 0 $B > /tmp/p0.txt 2>&1 & XLA_FLAGS="$ST" taskset -c 1 $B > /tmp/p1.txt 2>&1; wait
grep -E "^(search|retrain) " /tmp/p0.txt /tmp/p1.txt
