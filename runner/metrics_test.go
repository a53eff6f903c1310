package runner

import "testing"

func TestKept(t *testing.T) {
	tests := map[string]bool{
		"go_goroutines":                           true,
		"resctl_guard_state":                      true,
		"resctl_guard_hedges_total":               true,
		"resctl_guard_hedge_delay_seconds_bucket": false,
		"resctl_proxy_upstream_requests_total":    true,
		"resctl_proxy_grpc_calls_total":           true,
		"demo_http_requests_total":                false,
	}
	for name, want := range tests {
		if got := kept(name); got != want {
			t.Errorf("kept(%q) = %v, want %v", name, got, want)
		}
	}
}
