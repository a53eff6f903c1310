#!/usr/bin/env bash
# Two resctl builds' h2c proxies side by side, in front of bench-compare's
# tiny target, each a process of its own on 127.0.0.1, in interleaved
# rounds: saturation (h2load -c64 -m10 -t1) through each and directly, and
# each proxy's CPU per 1,000 requests at 2,000 req/s (h2load -c16 -m4,
# 125 req/s a connection). CPU per request is the steadier figure on a
# busy machine. Every load is bounded in time; every process started here
# is stopped on exit. Not part of make test.
#
# Usage: bench/h2c-ab.sh BEFORE AFTER   (two resctl binaries)
#   ROUNDS=N      rounds (default 5)
#   DURATION=Ns   length of each measurement, whole seconds (default 4s)
#   PORT_BASE=P   the 5 ports P … P+4 on 127.0.0.1 it listens on (default 18500)
set -euo pipefail
die() { echo "h2c-ab: $*" >&2; exit 1; }
(($# == 2)) && [ -x "$1" ] && [ -x "$2" ] || die "usage: bench/h2c-ab.sh BEFORE AFTER (two resctl binaries)"
before=$(realpath "$1")
after=$(realpath "$2")
cd "$(dirname "$0")/.."
command -v h2load >/dev/null || die "missing: h2load (apt-get install nghttp2-client)"
rounds=${ROUNDS:-5}
secs=${DURATION:-4s}
secs=${secs%s}
base=${PORT_BASE:-18500}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "ROUNDS=$rounds: want a whole number, 1 or more"
[[ $secs =~ ^[1-9][0-9]*$ ]] || die "DURATION: want whole seconds, like 4s"

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
(cd bench/compare && go build -o "$tmp/target" ./target)

T=$base
"$tmp/target" -http "127.0.0.1:$T" >"$tmp/target.log" 2>&1 &
pids+=($!)
ports=()
for i in 0 1; do
  bin=$before
  ((i == 1)) && bin=$after
  port=$((base + 1 + 2 * i))
  "$bin" proxy --protocol h2c --upstream "http://127.0.0.1:$T" --listen "127.0.0.1:$port" \
    --admin "127.0.0.1:$((port + 1))" >"$tmp/proxy$i.log" 2>&1 &
  pids+=($!)
  ports+=("$port")
done
for port in "$T" "${ports[@]}"; do
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
done

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
names=(before after)
echo "round path saturation_req_s cpu_ms_per_1000"
for r in $(seq 1 "$rounds"); do
  order=(0 1)
  ((r % 2 == 0)) && order=(1 0)
  for i in "${order[@]}"; do
    port=${ports[$i]}
    pid=${pids[$((i + 1))]}
    sat=$(timeout $((secs + 30)) h2load -c64 -m10 -t1 -D "$secs" "http://127.0.0.1:$port/" 2>&1 | awk '/finished in/ {print $4}')
    c0=$(cpu "$pid")
    n=$(timeout $((secs + 30)) h2load -c16 -m4 --rps 125 -D "$secs" "http://127.0.0.1:$port/" 2>&1 | awk '/^requests:/ {print $8}')
    c1=$(cpu "$pid")
    echo "$r ${names[$i]} ${sat:-?} $(awk -v d=$((c1 - c0)) -v n="${n:-0}" -v t="$tck" 'BEGIN {if (n > 0) printf "%.0f", d * 1000 / t * 1000 / n; else print "?"}')"
  done
  direct=$(timeout $((secs + 30)) h2load -c64 -m10 -t1 -D "$secs" "http://127.0.0.1:$T/" 2>&1 | awk '/finished in/ {print $4}')
  echo "$r direct ${direct:-?} -"
done
