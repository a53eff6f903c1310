#!/usr/bin/env bash
# End-to-end load benchmark: 1,000 requests/s for 60 s through the harness
# proxy to the built-in demo target, then the achieved rate and peak RSS.
# Usage: bench/load.sh [runs]   (default 1; the median is what to quote)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go build -o "$out/resctl" ./cmd/resctl
for i in $(seq 1 "$runs"); do
  echo "== run $i of $runs"
  "$out/resctl" run bench/scenarios/load-1000.yaml --out "$out/run$i" --quiet >/dev/null || true
  go run ./bench/loadcheck -rate 1000 -max-rss-mb 150 "$out/run$i/report.json" || status=$?
done
exit "${status:-0}"
