package main

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/resctl/resctl/harness"
)

func TestInjectCmd_FlagsToOptions(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want injectOptions
	}{
		{"issue example", []string{"inject", "latency", "--proxy", "web", "--delay", "200ms", "--jitter", "50ms", "--percent", "30", "--for", "30s"},
			injectOptions{Kind: "latency", Proxy: "web", For: 30 * time.Second, Params: []string{"delay=200ms", "jitter=50ms", "percent=30"}}},
		{"params and admin", []string{"inject", "abort", "--proxy", "p", "--param", "status=502", "--admin", "127.0.0.1:9", "--id", "x"},
			injectOptions{Kind: "abort", Proxy: "p", For: DefaultInjectFor, ID: "x", Admin: "127.0.0.1:9", Params: []string{"status=502"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *injectOptions
			cmd := newInjectCmd(func(_ context.Context, o *injectOptions) error { got = o; return nil })
			if code, stderr := execWith(t, cmd, tt.args...); code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			w := tt.want
			if got.Kind != w.Kind || got.Proxy != w.Proxy || got.For != w.For || got.ID != w.ID || got.Admin != w.Admin || !slices.Equal(got.Params, w.Params) {
				t.Errorf("options = %+v, want %+v", *got, w)
			}
		})
	}
}

// TestInjectCmd_ForBounds checks --for against the admin API's bounds
// before anything is sent: above zero, at most harness.MaxFaultTTL, a
// pause's --for as well.
func TestInjectCmd_ForBounds(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"the maximum", []string{"inject", "abort", "--proxy", "web", "--for", "24h"}, exitOK, ""},
		{"a second over", []string{"inject", "abort", "--proxy", "web", "--for", "24h0m1s"}, exitUsage, "--for 24h0m1s: over the maximum of 24h0m0s"},
		{"the issue's typo", []string{"inject", "latency", "--proxy", "default", "--delay", "1s", "--for", "2562047h"}, exitUsage, "over the maximum of 24h0m0s"},
		{"a runtime fault", []string{"inject", "gc", "--agent", "http://127.0.0.1:9/debug/resctl", "--for", "5000h"}, exitUsage, "over the maximum of 24h0m0s"},
		{"a pause", []string{"inject", "pause", "--process", "target", "--for", "5000h"}, exitUsage, "over the maximum of 24h0m0s"},
		{"zero", []string{"inject", "abort", "--proxy", "web", "--for", "0s"}, exitUsage, "must be above zero"},
		{"negative", []string{"inject", "abort", "--proxy", "web", "--for", "-1m"}, exitUsage, "must be above zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran := false
			cmd := newInjectCmd(func(context.Context, *injectOptions) error { ran = true; return nil })
			code, stderr := execWith(t, cmd, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.want)
			}
			if ran != (tt.code == exitOK) {
				t.Errorf("ran = %v with exit %d", ran, code)
			}
		})
	}
}

func TestProxyCmd_FlagsToOptions(t *testing.T) {
	t.Setenv("RESCTL_ADMIN_TOKEN", "from-env")
	var got *proxyOptions
	cmd := newProxyCmd(func(_ context.Context, o *proxyOptions) error { got = o; return nil })
	code, stderr := execWith(t, cmd, "proxy", "--upstream", "127.0.0.1:5432", "--protocol", "tcp", "--listen", "127.0.0.1:15432", "--name", "db", "--seed", "3",
		"--admin-allowed-host", "chaos.internal", "--admin-allowed-host", "10.0.0.5", "--max-conns", "20", "--idle-timeout", "2s", "--max-header-bytes", "4096")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := proxyOptions{Upstream: "127.0.0.1:5432", Protocol: "tcp", Listen: "127.0.0.1:15432", Name: "db", Seed: 3, Admin: "127.0.0.1:8474", Token: "from-env", LogFormat: "text",
		AllowedHosts: []string{"chaos.internal", "10.0.0.5"},
		Limits:       harness.ConnLimits{MaxConns: 20, IdleTimeout: 2 * time.Second, ReadHeaderTimeout: harness.DefaultReadHeaderTimeout, MaxHeaderBytes: 4096}}
	got.Stdout, got.Stderr = nil, nil
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("options = %+v, want %+v", *got, want)
	}
}

func TestParamsJSON(t *testing.T) {
	got, err := paramsJSON([]string{"delay=200ms", "percent=30", "headers={X-A: b}", "status=503"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"delay":"200ms","headers":{"X-A":"b"},"percent":30,"status":503}`; string(got) != want {
		t.Errorf("paramsJSON = %s, want %s", got, want)
	}
	if _, err := paramsJSON([]string{"novalue"}); err == nil {
		t.Error("a param without = was accepted")
	}
}
