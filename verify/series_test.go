package verify_test

import (
	"slices"
	"testing"

	"github.com/resctl/resctl/verify"
)

func TestLookup(t *testing.T) {
	tests := []struct {
		name   string
		series string
		kind   verify.Kind
		ok     bool
	}{
		{"count", "requests", verify.KindCount, true},
		{"rate", "rps", verify.KindRate, true},
		{"ratio", "success_rate", verify.KindRatio, true},
		{"error ratio", "error_rate", verify.KindRatio, true},
		{"fallback ratio", "fallback_rate", verify.KindRatio, true},
		{"percentile", "p999", verify.KindDuration, true},
		{"mean", "mean", verify.KindDuration, true},
		{"unknown", "p98", 0, false},
		{"case-sensitive", "P99", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, ok := verify.Lookup(tt.series)
			if kind != tt.kind || ok != tt.ok {
				t.Errorf("Lookup(%q) = %v, %v; want %v, %v", tt.series, kind, ok, tt.kind, tt.ok)
			}
		})
	}
}

func TestNames(t *testing.T) {
	want := []string{
		"dropped", "error_rate", "fallback_rate", "lag_max", "lag_p99", "max", "mean", "min",
		"p50", "p90", "p95", "p99", "p999", "requests", "rps",
		"service_p50", "service_p90", "service_p95", "service_p99", "service_p999", "success_rate",
		"upstream_success_rate",
	}
	got := verify.Names()
	if !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	got[0] = "mutated"
	if verify.Names()[0] != "dropped" {
		t.Error("Names() returned shared storage")
	}
	for _, name := range got[1:] {
		if _, ok := verify.Lookup(name); !ok {
			t.Errorf("Names() lists %q but Lookup does not know it", name)
		}
	}
}

func TestKind_String(t *testing.T) {
	tests := []struct {
		kind verify.Kind
		want string
	}{
		{verify.KindRatio, "ratio"},
		{verify.KindDuration, "duration"},
		{verify.KindCount, "count"},
		{verify.KindRate, "rate"},
		{verify.KindBytes, "bytes"},
		{verify.KindPlain, "plain"},
		{0, "Kind(0)"},
	}
	for _, tt := range tests {
		if got := tt.kind.String(); got != tt.want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(tt.kind), got, tt.want)
		}
	}
}
