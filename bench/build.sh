#!/usr/bin/env bash
# The one-time cost of building resctl, what a first `go run` pays: CPU
# time and peak memory of a build in an empty build cache, the binary's
# size as go build leaves it and stripped (-s -w, as make build does), and
# the packages it links. Modules are downloaded first, so the figures are the
# compile and link, not the network. The build cache is a temporary one,
# so the user's stays as it was.
# Usage: bench/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cache=$(mktemp -d) out=$(mktemp -d)
trap 'rm -rf "$cache" "$out"' EXIT
go mod download
echo "packages linked: $(go list -deps ./cmd/resctl | wc -l) ($(go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./cmd/resctl | grep -c .) outside the standard library)"
GOCACHE=$cache /usr/bin/time -f 'build in an empty cache: %U s user + %S s system CPU, %e s wall, peak RSS %M KiB' \
  go build -o "$out/resctl" ./cmd/resctl
GOCACHE=$cache go build -ldflags='-s -w' -o "$out/resctl-stripped" ./cmd/resctl
echo "binary: $(stat -c %s "$out/resctl") bytes; stripped (-s -w, as make build): $(stat -c %s "$out/resctl-stripped") bytes"
