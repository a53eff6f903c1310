#!/usr/bin/env bash
# End-to-end gRPC load benchmark: 2,000 unary calls/s through the gRPC
# harness proxy to the built-in demo target (a process of its own), then the
# achieved rate and the peak RSS of the resctl process; its RSS is sampled
# every 10 s while it runs, to show whether memory grows with the calls.
# Usage: bench/grpc.sh [runs] (default 1)   DURATION=10m bench/grpc.sh  (soak)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go build -o "$out/resctl" ./cmd/resctl
for i in $(seq 1 "$runs"); do
  echo "== run $i of $runs (${DURATION:-60s})"
  "$out/resctl" run bench/scenarios/grpc-2000.yaml --out "$out/run$i" --quiet >/dev/null &
  pid=$!
  t=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 10
    t=$((t + 10))
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$rss" ] && echo "t=${t}s rss=$((rss / 1024)) MB"
  done
  wait "$pid" || true
  go run ./bench/loadcheck -rate 2000 -max-rss-mb 200 "$out/run$i/report.json" || status=$?
done
exit "${status:-0}"
