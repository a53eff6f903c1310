# resctl — make targets. `make test` is what CI runs.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS  := -s -w -X github.com/resctl/resctl/internal/version.Version=$(VERSION) \
            -X github.com/resctl/resctl/internal/version.Commit=$(COMMIT)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build services test test-stress check-modules fuzz fuzz-short test-browser lint bench bench-detect bench-load bench-compare soak demo screenshot generate release-check clean

## build: the resctl binary in bin/, version stamped
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/resctl ./cmd/resctl

## services: the example services the dependency scenarios start, bin/orders
## and bin/cache (testdata/scenarios/dependency-*.yaml default to them)
services:
	$(GO) build -o bin/orders ./testdata/services/orders
	$(GO) build -o bin/cache ./testdata/services/cache

## test: every test, with the race detector
test:
	$(GO) test -race -count=1 -timeout 10m ./...

## test-stress: make test three times in a row with every core kept busy by
## other work (stress-ng --cpu N: apt-get install stress-ng); RUNS=N for more
RUNS ?= 3
test-stress:
	./scripts/test-stress.sh $(RUNS)

## fuzz: every native fuzz target for FUZZTIME each (default 10m), one
## worker each (FUZZ_PARALLEL), each new input minimized for at most
## FUZZMINIMIZE; an input that fails is written to the package's
## testdata/fuzz/FuzzXxx, to commit with its fix
FUZZTIME      ?= 10m
FUZZ_PARALLEL ?= 1
FUZZMINIMIZE  ?= 60s
FUZZ_TARGETS  := scenario:FuzzParse scenario:FuzzParseWith verify:FuzzParse report:FuzzReadJSON \
                 harness:FuzzAdmin_AddFault harness:FuzzAdmin_Bodies harness:FuzzParseGRPCTimeout harness:FuzzParseHead \
                 inject:FuzzParseSpecFor_GRPC
fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "== ./$$pkg $$name for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) -parallel $(FUZZ_PARALLEL) ./$$pkg || exit 1; \
	done

## fuzz-short: the same, 3,000 inputs each and nothing minimized, a pass
## for CI (not part of make test). Counted, not timed: a duration is a
## deadline, and go test fails a target, having found nothing, when the
## deadline passes while its worker is busy (minimizing a mutant of the
## scenario alias bomb or of a whole report takes a minute); a count of
## inputs has no deadline to miss. A failing input is still written, whole.
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=3000x FUZZMINIMIZE=0s

## check-modules: build and vet the repository's other Go modules (bench/*,
## modules of their own so their peers stay out of resctl's go.mod), so a
## stale go.mod or go.sum there fails CI instead of the next person to run them.
## With -race, as make test builds, so after it they reuse its build cache.
MODULES := $(patsubst %/go.mod,%,$(shell git ls-files '*/go.mod'))
check-modules:
	@set -e; for m in $(MODULES); do echo "$$m"; (cd $$m && $(GO) build -race ./... && $(GO) vet -race ./...); done

## lint: formatting, vet, staticcheck, and a tidy go.mod
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) mod tidy -diff

## bench: micro-benchmarks of every package, then the load benchmark
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./...
	./bench/load.sh

## bench-detect: the guard-policy detection table of docs/guard.md (virtual
## time: the same on every machine), medians of five seeds
bench-detect:
	$(GO) run ./bench/detect -seeds 5

## bench-load: only the end-to-end load benchmark (1,000 req/s for 60 s)
bench-load:
	./bench/load.sh

## bench-compare: resctl's proxies (http, http with breaker/retry/timeout,
## tcp, h2c, grpc) beside nginx, Toxiproxy, a plain httputil.ReverseProxy
## and the target alone, each a process of its own on loopback, driven by
## wrk, vegeta, h2load, ghz and iperf3 in ROUNDS interleaved rounds (default
## 3) of DURATION per measurement (default 5s); prints the medians and
## appends them to BENCHMARKS.md (APPEND=0 only prints). Needs apt's
## nginx-light, wrk, nghttp2-client, iperf3 and jq. Not part of make test
bench-compare:
	./bench/compare.sh

## soak: one hour at 1,000 requests/s through the proxy to the demo target,
## a fault switched on or off every minute; every phase's verdict must be
## right and resctl's own RSS and goroutines flat after warm-up
## (bench/soak.sh, bench/soakcheck). DURATION=3m PHASE=30s for a short try;
## OUT=DIR keeps the report. Not part of make test
soak:
	./bench/soak.sh

## demo: run the quickstart scenario against the built-in demo target;
## writes resctl-out/report.json and the recovery report resctl-out/report.html
demo:
	$(GO) run ./cmd/resctl run testdata/scenarios/quickstart.yaml --out resctl-out --html resctl-out/report.html

## test-browser: load report.html in headless Chromium (apt-get install chromium);
## fails, rather than skips, when Chromium is missing
test-browser:
	RESCTL_BROWSER_TEST=1 $(GO) test -count=1 -run 'TestHTML_Browser' -v ./report

## screenshot: docs/img/report.png, the README's picture of the quickstart report
CHROMIUM ?= chromium
screenshot: demo
	@mkdir -p docs/img
	profile=$$(mktemp -d) && $(CHROMIUM) --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
	  --disable-background-networking --disable-component-update --disable-sync --user-data-dir=$$profile \
	  --hide-scrollbars --window-size=1100,1600 --screenshot=docs/img/report.png \
	  "file://$(CURDIR)/resctl-out/report.html" 2>/dev/null; status=$$?; rm -rf $$profile; exit $$status

## generate: the demo target's gRPC code in internal/demo/demopb, from
## testdata/protos/demo.proto (needs protoc: apt-get install protobuf-compiler).
## The plugins are pinned and installed to a temporary directory.
PROTOC_GEN_GO      := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
generate:
	@command -v protoc >/dev/null || { echo "protoc not found; hint: apt-get install protobuf-compiler"; exit 1; }
	@bin=$$(mktemp -d) && trap 'rm -rf "$$bin"' EXIT && \
	GOBIN=$$bin $(GO) install $(PROTOC_GEN_GO) && GOBIN=$$bin $(GO) install $(PROTOC_GEN_GO_GRPC) && \
	protoc -I testdata/protos \
	  --plugin=protoc-gen-go=$$bin/protoc-gen-go --go_out=. --go_opt=module=github.com/resctl/resctl \
	  --plugin=protoc-gen-go-grpc=$$bin/protoc-gen-go-grpc --go-grpc_out=. --go-grpc_opt=module=github.com/resctl/resctl \
	  testdata/protos/demo.proto

## release-check: validate .goreleaser.yaml with the goreleaser release that
## builds with go.mod's Go (newer ones need a newer Go)
GORELEASER := github.com/goreleaser/goreleaser/v2@v2.17.0
release-check:
	$(GO) run $(GORELEASER) check

clean:
	rm -rf bin dist resctl-out
