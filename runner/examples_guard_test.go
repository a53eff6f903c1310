package runner

import (
	"path/filepath"
	"testing"
)

// The examples of guard as a library (examples/), as CI runs them: each is
// built, started by resctl in front of its dependency's proxy, and its
// scenario checks, from the service's own /metrics, that its guard acted.

// A guard.Transport in the service's HTTP client: its breaker opens within
// 2 s of payments slowing down, and its fallback serves users meanwhile.
func TestExample_GuardHTTPClient(t *testing.T) {
	r := runServiceExample(t, "./examples/http-client", "EXAMPLE_BIN", "EXAMPLE_ADDR", "example-http-client.yaml")
	if r.Aborted != "" {
		t.Errorf("aborted: %s", r.Aborted)
	}
}

// A guard read from YAML with guard.OpenFile: the service's breaker opens
// within 2 s of payments failing, its retries stay within their budget.
// (Its reload is tested in examples/yaml-reload.)
func TestExample_GuardYAMLReload(t *testing.T) {
	file, err := filepath.Abs("../examples/yaml-reload/guard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := runServiceExample(t, "./examples/yaml-reload", "EXAMPLE_BIN", "EXAMPLE_ADDR", "example-yaml-reload.yaml", "GUARD_FILE="+file)
	if r.Aborted != "" {
		t.Errorf("aborted: %s", r.Aborted)
	}
}

// guard's gRPC client interceptors: the service's breaker opens within 2 s
// of its gRPC dependency slowing down. The scenario starts the dependency
// itself (the same binary, as payments).
func TestExample_GuardGRPCClient(t *testing.T) {
	r := runServiceExample(t, "./examples/grpc-client", "EXAMPLE_BIN", "EXAMPLE_ADDR", "example-grpc-client.yaml", "PAYMENTS_ADDR="+freeAddr(t))
	if r.Aborted != "" {
		t.Errorf("aborted: %s", r.Aborted)
	}
}
