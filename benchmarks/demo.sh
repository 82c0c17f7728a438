#!/usr/bin/env bash
# The demo end to end (`harmonic-nas run --config configs/demo.yaml`), printing JSON: wall time of each
# step (this run's entry in RUN_DIR/timings.json), total wall time, and the peak memory of the whole process tree
# (the search's worker processes included: PSS and RSS sums), sampled every second.
# Usage: bash benchmarks/demo.sh [CONFIG] [RUN_DIR]   (a fresh RUN_DIR measures everything; an old one
# measures only what is left to do)
set -euo pipefail
CONFIG=${1:-configs/demo.yaml}
RUN_DIR=${2:-runs/demo}
HNAS=${HNAS:-harmonic-nas}
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000

start=$(date +%s.%N)
setsid "$HNAS" run --config "$CONFIG" --out "$RUN_DIR" >&2 &
pid=$!
# RSS summed over processes counts shared pages (torch's libraries, the memory-mapped dataset) once per
# process; PSS shares them out, so its sum is the memory the job really holds.
peak_kb=0
peak_pss_kb=0
while kill -0 "$pid" 2>/dev/null; do
  # (processes come and go between the listing and the reads: no failure here may stop the script)
  pids=$(ps -o pid= -s "$pid" 2>/dev/null || true)
  kb=$( (ps -o rss= -s "$pid" 2>/dev/null || true) | awk '{s += $1} END {print s + 0}')
  pss_kb=$(for p in $pids; do cat "/proc/$p/smaps_rollup" 2>/dev/null || true; done | awk '/^Pss:/ {s += $2} END {print s + 0}')
  (( kb > peak_kb )) && peak_kb=$kb
  (( pss_kb > peak_pss_kb )) && peak_pss_kb=$pss_kb
  sleep 1
done
wait "$pid"
end=$(date +%s.%N)
python3 - "$RUN_DIR/timings.json" "$start" "$end" "$peak_kb" "$peak_pss_kb" <<'PY'
import json, os, sys
steps = json.load(open(sys.argv[1]))["runs"][-1]["steps_s"]
print(json.dumps({"steps_s": steps, "total_s": round(float(sys.argv[3]) - float(sys.argv[2]), 1),
                  "peak_pss_gb": round(int(sys.argv[5]) / 1024**2, 2),
                  "peak_rss_sum_gb": round(int(sys.argv[4]) / 1024**2, 2), "cpus": os.cpu_count()}, indent=2))
PY
