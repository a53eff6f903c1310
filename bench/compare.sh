#!/usr/bin/env bash
# Against peers (make bench-compare): resctl's proxies beside nginx,
# Toxiproxy, a plain httputil.ReverseProxy and the target alone, each a
# process of its own on 127.0.0.1, driven by external generators in
# interleaved rounds (every path once per round, each round in another
# order): saturation (wrk -t1 -c64), CPU per 1,000 requests at 2,000 req/s
# and added p50 at 1,000 req/s (vegeta), h2c saturation (h2load), gRPC
# unary saturation (ghz) and TCP bulk (iperf3). Prints the medians over the
# rounds and appends them to BENCHMARKS.md. Every load is bounded in time;
# every process started here is stopped on exit. Not part of make test.
#
# Usage: bench/compare.sh
#   ROUNDS=N      rounds (default 3)
#   DURATION=Ns   length of each measurement, whole seconds (default 5s)
#   APPEND=0      print the table only, leave BENCHMARKS.md alone
#   PORT_BASE=P   the 19 ports P … P+18 on 127.0.0.1 it listens on (default 18400)
#   LOGS=DIR      keep every process's log, the configurations and the
#                 measurements (results.tsv) in DIR
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "bench-compare: $*" >&2; exit 1; }

rounds=${ROUNDS:-3}
duration=${DURATION:-5s}
secs=${duration%s}
base=${PORT_BASE:-18400}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "ROUNDS=$rounds: want a whole number of rounds, 1 or more"
[[ $secs =~ ^[1-9][0-9]*$ ]] || die "DURATION=$duration: want whole seconds, like 5s"
[[ $base =~ ^[1-9][0-9]*$ ]] && ((base + 18 < 65536)) || die "PORT_BASE=$base: want a port, with 18 more above it"

# The generators and peers are the distribution's; the rest is built here.
missing=()
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || missing+=("nginx (apt-get install nginx-light)")
for t in wrk:wrk h2load:nghttp2-client iperf3:iperf3 jq:jq ss:iproute2; do
  command -v "${t%%:*}" >/dev/null || missing+=("${t%%:*} (apt-get install ${t##*:})")
done
command -v go >/dev/null || missing+=("go (https://go.dev/dl)")
((${#missing[@]} == 0)) || die "missing: $(printf '%s; ' "${missing[@]}" | sed 's/; $//')"

# The ports, every one of them free.
T=$base G=$((base + 1)) IPERF=$((base + 2)) NGINX=$((base + 3))
TOXI_API=$((base + 4)) TOXI=$((base + 5)) TOXI_BULK=$((base + 6)) REV=$((base + 7))
RH=$((base + 8)) RH_ADMIN=$((base + 9)) RG=$((base + 10)) RG_ADMIN=$((base + 11))
RT=$((base + 12)) RT_BULK=$((base + 13)) RT_ADMIN=$((base + 14))
RC=$((base + 15)) RC_ADMIN=$((base + 16)) RGR=$((base + 17)) RGR_ADMIN=$((base + 18))
busy=$(ss -Hltn | awk -v lo="$base" -v hi=$((base + 18)) '{n = split($4, a, ":"); p = a[n] + 0; if (p >= lo && p <= hi) print p}' | sort -nu | paste -sd' ')
[ -z "$busy" ] || die "ports in use: ${busy}; set PORT_BASE to the first of 19 free ports"

commit=$(git rev-parse --short HEAD)
[ -z "$(git status --porcelain --untracked-files=no)" ] || commit="$commit with uncommitted changes"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

tmp=$(mktemp -d /tmp/resctl-compare.XXXXXX)
chmod 755 "$tmp" # nginx's worker, as nobody when run as root, reaches its temp paths
bin=$tmp/bin
results=$tmp/results.tsv
declare -A pid
pids=()

alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $s != Z* ]]; }

cleanup() {
  local status=$? p left=() i
  trap - EXIT
  if [ -n "${pid[nginx]:-}" ]; then
    for p in $(pgrep -P "${pid[nginx]}" || true); do pids+=("$p"); done
  fi
  if ((${#pids[@]})); then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for i in $(seq 50); do
      left=()
      for p in "${pids[@]}"; do alive "$p" && left+=("$p"); done
      ((${#left[@]})) || break
      sleep 0.1
    done
    ((${#left[@]} == 0)) || kill -KILL "${left[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    left=()
    for p in "${pids[@]}"; do alive "$p" && left+=("$p"); done
    for p in $(pgrep -f "$tmp" || true); do left+=("$p"); done
    ((${#left[@]} == 0)) || { echo "bench-compare: still running after stop: ${left[*]}" >&2; status=1; }
  fi
  if [ -n "${LOGS:-}" ]; then
    mkdir -p "$LOGS" && cp -r "$tmp"/*.log "$tmp"/*.yaml "$tmp"/*.json "$tmp"/nginx "$tmp"/results.tsv "$LOGS"/ 2>/dev/null || true
    echo "logs, configurations and measurements kept in $LOGS"
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME COMMAND...: runs COMMAND in the background, its output in
# $tmp/NAME.log.
start() {
  local name=$1
  shift
  "$@" >"$tmp/$name.log" 2>&1 &
  pid[$name]=$!
  pids+=("$!")
}

# await NAME PORT: until NAME listens on PORT, or fails with its log.
await() {
  local i
  for i in $(seq 100); do
    ss -Hltn "sport = :$2" | grep -q . && return 0
    alive "${pid[$1]}" || break
    sleep 0.1
  done
  echo "bench-compare: $1 is not listening on 127.0.0.1:$2; its log:" >&2
  tail -20 "$tmp/$1.log" >&2
  exit 1
}

echo "== building resctl and the peers (bench/compare)"
mkdir -p "$bin"
go build -o "$bin/resctl" ./cmd/resctl
(
  cd bench/compare
  go build -o "$bin/" ./target ./revproxy ./table github.com/tsenart/vegeta/v12 github.com/bojand/ghz/cmd/ghz
  go build -o "$bin/toxiproxy-server" github.com/Shopify/toxiproxy/v2/cmd/server
)

echo "== starting the paths on 127.0.0.1:$base-$((base + 18))"
start target "$bin/target" -http "127.0.0.1:$T" -grpc "127.0.0.1:$G"
start iperf3 iperf3 -s -B 127.0.0.1 -p "$IPERF"

mkdir -p "$tmp/nginx"
user=""
[ "$(id -u)" != 0 ] || user="user nobody $(id -gn nobody);"
cat >"$tmp/nginx/nginx.conf" <<EOF
$user
worker_processes 1;
daemon off;
master_process on;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  keepalive_requests 1000000;
  upstream target {
    server 127.0.0.1:$T;
    keepalive 128;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$NGINX;
    location / {
      proxy_pass http://target;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
start nginx "$nginx" -p "$tmp/nginx/" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log"

cat >"$tmp/toxiproxy.json" <<EOF
[
  {"name": "http", "listen": "127.0.0.1:$TOXI", "upstream": "127.0.0.1:$T", "enabled": true},
  {"name": "bulk", "listen": "127.0.0.1:$TOXI_BULK", "upstream": "127.0.0.1:$IPERF", "enabled": true}
]
EOF
start toxiproxy "$bin/toxiproxy-server" -host 127.0.0.1 -port "$TOXI_API" -config "$tmp/toxiproxy.json"
start revproxy "$bin/revproxy" -listen "127.0.0.1:$REV" -upstream "http://127.0.0.1:$T"

start resctl-http "$bin/resctl" proxy --upstream "http://127.0.0.1:$T" --listen "127.0.0.1:$RH" --admin "127.0.0.1:$RH_ADMIN"
cat >"$tmp/guard.yaml" <<EOF
- name: guarded
  listen: 127.0.0.1:$RG
  upstream: http://127.0.0.1:$T
  guard:
    - breaker: {}
    - retry: {}
    - timeout: 1s
EOF
start resctl-guard "$bin/resctl" proxy --config "$tmp/guard.yaml" --admin "127.0.0.1:$RG_ADMIN"
cat >"$tmp/tcp.yaml" <<EOF
- {name: http, protocol: tcp, listen: "127.0.0.1:$RT", upstream: "127.0.0.1:$T"}
- {name: bulk, protocol: tcp, listen: "127.0.0.1:$RT_BULK", upstream: "127.0.0.1:$IPERF"}
EOF
start resctl-tcp "$bin/resctl" proxy --config "$tmp/tcp.yaml" --admin "127.0.0.1:$RT_ADMIN"
start resctl-h2c "$bin/resctl" proxy --protocol h2c --upstream "http://127.0.0.1:$T" --listen "127.0.0.1:$RC" --admin "127.0.0.1:$RC_ADMIN"
start resctl-grpc "$bin/resctl" proxy --protocol grpc --upstream "http://127.0.0.1:$G" --listen "127.0.0.1:$RGR" --admin "127.0.0.1:$RGR_ADMIN"

await target "$T"
await target "$G"
await iperf3 "$IPERF"
await nginx "$NGINX"
await toxiproxy "$TOXI"
await toxiproxy "$TOXI_BULK"
await revproxy "$REV"
await resctl-http "$RH"
await resctl-guard "$RG"
await resctl-tcp "$RT"
await resctl-tcp "$RT_BULK"
await resctl-h2c "$RC"
await resctl-grpc "$RGR"

# The HTTP paths of the main table: where wrk and vegeta send, and whose
# CPU time counts (the target's own for direct).
declare -A url=(
  [direct]=http://127.0.0.1:$T/ [nginx]=http://127.0.0.1:$NGINX/ [toxiproxy]=http://127.0.0.1:$TOXI/
  [revproxy]=http://127.0.0.1:$REV/ [resctl-http]=http://127.0.0.1:$RH/ [resctl-guard]=http://127.0.0.1:$RG/
  [resctl-tcp]=http://127.0.0.1:$RT/
)
paths=(direct nginx toxiproxy revproxy resctl-http resctl-guard resctl-tcp)
for p in "${paths[@]}"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${url[$p]}" || true)
  [ "$code" = 200 ] || die "$p (${url[$p]}) answered ${code:-nothing}, not 200; logs in $tmp"
done

# procs PATH: the processes whose CPU time is the path's.
procs() {
  case $1 in
  direct) echo "${pid[target]}" ;;
  nginx) echo "${pid[nginx]}" $(pgrep -P "${pid[nginx]}") ;;
  *) echo "${pid[$1]}" ;;
  esac
}

# ticks PID...: their user + system CPU time, in clock ticks.
ticks() {
  local p t=0
  for p in "$@"; do
    t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$t"
}

# generators: the CPU time, in clock ticks, of this script's children that
# have ended, which a generator run in $(...) is once it returns.
generators() { sed 's/.*) //' "/proc/$$/stat" | awk '{print $14 + $15}'; }

# machine: jiffies of every CPU together: busy (the kernel's softirq
# work, loopback's packets among it, and time the hypervisor stole
# included), softirq, stolen, and all.
machine() { awk '/^cpu / {t = $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; print t - $5 - $6, $8, $9, t; exit}' /proc/stat; }

hz=$(getconf CLK_TCK)
ncpu=$(nproc)
now() { date +%s.%N; }
record() { printf '%s\t%s\t%s\t%s\n' "$round" "$1" "$2" "$3" >>"$results"; }
calc() { awk "BEGIN {printf \"%.6f\\n\", $*}"; }
bound=$((secs + 30)) # the most any one generator may take

# vegeta RATE URL: a vegeta attack of secs seconds at RATE req/s, its JSON report.
vegeta() {
  echo "GET $2" | timeout --foreground "$bound" "$bin/vegeta" attack -rate "$1/s" -duration "${secs}s" -timeout 5s |
    "$bin/vegeta" report -type json
}

# failures REPORT: for a vegeta report with failures, its status codes
# (0: no response) and its first errors.
failures() {
  jq -r 'select(.success < 1) | "; status codes \(.status_codes | tojson), errors \(.errors[:3] | tojson)"' <<<"$1" 2>/dev/null || true
}

measure_http() {
  local p=$1 u=${url[$1]} pr t0 t1 p0 p1 tg0 tg1 g0 g1 out rps errs cores tcores gcores rep n sent ok cpu p50 i
  local -a m0 m1 mc
  read -ra pr <<<"$(procs "$p")"
  # Saturation, and where the CPU went meanwhile; then p50 at 1,000 req/s,
  # then CPU at 2,000 req/s, the load most likely to overwhelm a path on two
  # shared cores (and open a breaker, which would answer the next load too).
  read -ra m0 <<<"$(machine)"
  p0=$(ticks "${pr[@]}") tg0=$(ticks "${pid[target]}") g0=$(generators) t0=$(now)
  out=$(timeout --foreground "$bound" wrk -t1 -c64 -d"${secs}s" "$u") || true
  g1=$(generators) p1=$(ticks "${pr[@]}") tg1=$(ticks "${pid[target]}") t1=$(now)
  read -ra m1 <<<"$(machine)"
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors:/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")
  cores=$(calc "($p1 - $p0) / $hz / ($t1 - $t0)")
  tcores=$(calc "($tg1 - $tg0) / $hz / ($t1 - $t0)")
  gcores=$(calc "($g1 - $g0) / $hz / ($t1 - $t0)")
  for i in 0 1 2; do mc[i]=$(calc "$ncpu * (${m1[i]} - ${m0[i]}) / (${m1[3]} - ${m0[3]})"); done
  if [ -n "$rps" ]; then
    record "$p" sat "$rps"
    record "$p" sat_errors "$errs"
    record "$p" sat_path_cores "$cores"
    record "$p" sat_target_cores "$tcores"
    record "$p" sat_gen_cores "$gcores"
    record "$p" sat_busy_cores "${mc[0]}"
    record "$p" sat_softirq_cores "${mc[1]}"
    record "$p" sat_steal_cores "${mc[2]}"
    printf '   %-13s wrk          %9.0f req/s, %s errors; cores: path %.2f, target %.2f, wrk %.2f, softirq %.2f, stolen %.2f, machine %.2f\n' \
      "$p" "$rps" "$errs" "$cores" "$tcores" "$gcores" "${mc[1]}" "${mc[2]}" "${mc[0]}"
  else
    echo "   $p: wrk gave no figure: $out"
  fi
  sleep 1
  # p50 at 1,000 req/s.
  rep=$(vegeta 1000 "$u") || true
  n=$(jq -r '.requests // 0' <<<"$rep" 2>/dev/null || echo 0)
  if ((n > 0)); then
    p50=$(jq -r '.latencies["50th"] / 1e6' <<<"$rep") ok=$(jq -r .success <<<"$rep")
    record "$p" p50 "$p50"
    record "$p" p50_success "$ok"
    printf '   %-13s vegeta 1000  %9.3f ms p50 (%.2f%% ok)%s\n' "$p" "$p50" "$(calc "100 * $ok")" "$(failures "$rep")"
  else
    echo "   $p: vegeta at 1,000 req/s gave no figure"
  fi
  sleep 1
  # CPU per 1,000 requests at 2,000 req/s.
  p0=$(ticks "${pr[@]}")
  rep=$(vegeta 2000 "$u") || true
  p1=$(ticks "${pr[@]}")
  n=$(jq -r '.requests // 0' <<<"$rep" 2>/dev/null || echo 0)
  if ((n > 0)); then
    sent=$(jq -r .rate <<<"$rep") ok=$(jq -r .success <<<"$rep")
    cpu=$(calc "($p1 - $p0) * 1000 / $hz / ($n / 1000)")
    record "$p" cpu "$cpu"
    record "$p" cpu_rate "$sent"
    record "$p" cpu_success "$ok"
    printf '   %-13s vegeta 2000  %9.1f ms CPU per 1,000 requests (%.1f req/s sent, %.2f%% ok)%s\n' "$p" "$cpu" "$sent" "$(calc "100 * $ok")" "$(failures "$rep")"
  else
    echo "   $p: vegeta at 2,000 req/s gave no figure"
  fi
  sleep 1
}

measure_h2c() { # PATH PORT
  local out rps g0 g1 t0 t1 p0 p1 pr
  read -ra pr <<<"$(procs "$1")"
  p0=$(ticks "${pr[@]}") g0=$(generators) t0=$(now)
  out=$(timeout --foreground "$bound" h2load -c64 -m10 -t1 -D "$secs" "http://127.0.0.1:$2/" 2>&1) || true
  g1=$(generators) p1=$(ticks "${pr[@]}") t1=$(now)
  rps=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out")
  if [ -n "$rps" ]; then
    record "$1" h2c "$rps"
    printf '   %-13s h2load       %9.0f req/s; cores: path %.2f, h2load %.2f; %s\n' "$1" "$rps" \
      "$(calc "($p1 - $p0) / $hz / ($t1 - $t0)")" "$(calc "($g1 - $g0) / $hz / ($t1 - $t0)")" "$(grep '^requests:' <<<"$out")"
  else
    echo "   $1: h2load gave no figure: $(tail -3 <<<"$out")"
  fi
  sleep 1
}

measure_grpc() { # PATH PORT
  local out rps g0 g1 t0 t1 p0 p1 pr
  read -ra pr <<<"$(procs "$1")"
  p0=$(ticks "${pr[@]}") g0=$(generators) t0=$(now)
  out=$(timeout --foreground "$bound" "$bin/ghz" --insecure --call grpc.health.v1.Health.Check -c 50 -z "${secs}s" -O json "127.0.0.1:$2") || true
  g1=$(generators) p1=$(ticks "${pr[@]}") t1=$(now)
  rps=$(jq -r '(.statusCodeDistribution.OK // 0) / (.total / 1e9)' <<<"$out" 2>/dev/null || true)
  if [ -n "$rps" ] && [ "$rps" != 0 ]; then
    record "$1" grpc "$rps"
    printf '   %-13s ghz          %9.0f OK calls/s; cores: path %.2f, ghz %.2f; %s\n' "$1" "$rps" \
      "$(calc "($p1 - $p0) / $hz / ($t1 - $t0)")" "$(calc "($g1 - $g0) / $hz / ($t1 - $t0)")" "$(jq -c .statusCodeDistribution <<<"$out")"
  else
    echo "   $1: ghz gave no figure: $(head -c 300 <<<"$out")"
  fi
  sleep 1
}

measure_bulk() { # PATH PORT
  local out bps try
  for try in 1 2; do
    out=$(timeout --foreground "$bound" iperf3 -c 127.0.0.1 -p "$2" -t "$secs" -J) || true
    bps=$(jq -r '.end.sum_received.bits_per_second // empty' <<<"$out" 2>/dev/null || true)
    [ -z "$bps" ] || break
    sleep 1 # the server may still be closing the previous test
  done
  if [ -n "$bps" ]; then
    record "$1" bulk "$(calc "$bps / 8")"
    printf '   %-13s iperf3       %9.2f GB/s\n' "$1" "$(calc "$bps / 8 / 1e9")"
  else
    echo "   $1: iperf3 gave no figure: $(jq -r '.error // empty' <<<"$out" 2>/dev/null)"
  fi
  sleep 1
}

units=(
  http:direct http:nginx http:toxiproxy http:revproxy http:resctl-http http:resctl-guard http:resctl-tcp
  h2c:direct:$T h2c:resctl-h2c:$RC grpc:direct:$G grpc:resctl-grpc:$RGR
  bulk:direct:$IPERF bulk:resctl-tcp:$RT_BULK bulk:toxiproxy:$TOXI_BULK
)

# order ROUND: the units, rotated by five places a round and every other
# round reversed, so that no path always follows the same one.
order() {
  local r=$1 n=${#units[@]} i out=()
  for ((i = 0; i < n; i++)); do out+=("${units[(i + (r - 1) * 5) % n]}"); done
  if ((r % 2 == 0)); then
    for ((i = n - 1; i >= 0; i--)); do echo "${out[i]}"; done
  else
    printf '%s\n' "${out[@]}"
  fi
}

run() {
  local kind rest
  IFS=: read -r kind rest <<<"$1"
  case $kind in
  http) measure_http "$rest" ;;
  h2c) measure_h2c "${rest%%:*}" "${rest##*:}" ;;
  grpc) measure_grpc "${rest%%:*}" "${rest##*:}" ;;
  bulk) measure_bulk "${rest%%:*}" "${rest##*:}" ;;
  esac
}

echo "== warm-up: 1 s of wrk on every HTTP path, of h2load and ghz on theirs"
for p in "${paths[@]}"; do timeout --foreground 30 wrk -t1 -c64 -d1s "${url[$p]}" >/dev/null || true; done
for port in "$T" "$RC"; do timeout --foreground 30 h2load -c64 -m10 -t1 -D 1 "http://127.0.0.1:$port/" >/dev/null 2>&1 || true; done
for port in "$G" "$RGR"; do timeout --foreground 30 "$bin/ghz" --insecure --call grpc.health.v1.Health.Check -c 50 -z 1s "127.0.0.1:$port" >/dev/null 2>&1 || true; done

: >"$results"
for round in $(seq 1 "$rounds"); do
  echo "== round $round of $rounds ($(cut -d' ' -f1-3 /proc/loadavg))"
  while read -r u; do run "$u"; done < <(order "$round")
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

table=$("$bin/table" <"$results")
echo
echo "$table"
echo
echo "Load average (1, 5, 15 min): $load_before before, $load_after after."

[ "${APPEND:-1}" != 0 ] || exit 0
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
block=$tmp/block.md
{
  echo "### $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit"
  echo
  echo "    ROUNDS=$rounds DURATION=${secs}s make bench-compare"
  echo
  echo "$cpu_model, $ncpu cores, $(go env GOVERSION); $("$nginx" -v 2>&1 | sed 's/^nginx version: //'), Toxiproxy v2.5.0," \
    "$(wrk -v 2>&1 | awk 'NR == 1 {print $1, $2}'), $(h2load --version | head -1), $(iperf3 --version | awk 'NR == 1 {print $1, $2}')," \
    "vegeta v12.13.0, ghz v0.121.0. Load average (1, 5, 15 min): $load_before before, $load_after after." \
    "$( ((rounds == 1)) && echo "One round" || echo "Medians of $rounds rounds"), ${secs} s per measurement."
  echo
  echo "$table"
} >"$block"
section='## Against peers: `make bench-compare`'
if grep -qxF "$section" BENCHMARKS.md; then
  # Before the heading of the section that follows, or at the end.
  awk -v section="$section" -v block="$block" '
    function put() { while ((getline l < block) > 0) print l; done = 1 }
    $0 == section { in_section = 1 }
    in_section && !done && /^## / && $0 != section { put(); print "" }
    { print; last = $0 }
    END { if (!done) { if (last != "") print ""; put() } }
  ' BENCHMARKS.md >"$tmp/BENCHMARKS.md"
else
  { cat BENCHMARKS.md; echo; echo "$section"; echo; cat "$block"; } >"$tmp/BENCHMARKS.md"
fi
cp "$tmp/BENCHMARKS.md" BENCHMARKS.md
echo "appended to BENCHMARKS.md under \"$section\""
