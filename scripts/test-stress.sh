#!/usr/bin/env bash
# Runs the whole test suite (make test) RUNS times in a row while every core
# is kept busy by other work, as on a shared CI runner: stress-ng --cpu N
# when it is installed (apt-get install stress-ng), a busy shell loop per
# core otherwise. Stops at the first failing run; prints each run's wall
# time. Usage: scripts/test-stress.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
cores=$(nproc)
hogs=()
stop_hogs() {
  for p in "${hogs[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_hogs EXIT
if command -v stress-ng >/dev/null 2>&1; then
  stress-ng --cpu "$cores" --quiet &
  hogs+=($!)
  echo "test-stress: stress-ng --cpu $cores beside the suite"
else
  for _ in $(seq "$cores"); do
    ( while :; do :; done ) &
    hogs+=($!)
  done
  echo "test-stress: a busy loop on each of $cores cores beside the suite (install stress-ng to use it instead)"
fi
for i in $(seq "$runs"); do
  start=$(date +%s)
  if make test; then
    echo "test-stress: run $i of $runs passed in $(( $(date +%s) - start ))s"
  else
    echo "test-stress: run $i of $runs FAILED after $(( $(date +%s) - start ))s"
    exit 1
  fi
done
