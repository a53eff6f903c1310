package harness

import (
	"testing"
	"time"
)

func TestGRPCTimeout_RoundTrip(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want string
	}{
		{"nanoseconds", 1500 * time.Nanosecond, "1500n"},
		{"just under eight digits of nanoseconds", 99_999_999, "99999999n"},
		{"microseconds, rounded up", 100*time.Millisecond + 1, "100001u"},
		{"milliseconds", 300 * time.Second, "300000m"},
		{"seconds", 1000 * time.Hour, "3600000S"},
		{"nothing left is one nanosecond", -time.Second, "1n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := formatGRPCTimeout(tt.d)
			if got != tt.want {
				t.Fatalf("formatGRPCTimeout(%v) = %q, want %q", tt.d, got, tt.want)
			}
			back, ok := parseGRPCTimeout(got)
			if !ok || back < tt.d {
				t.Errorf("parseGRPCTimeout(%q) = %v, %v; want at least %v", got, back, ok, tt.d)
			}
		})
	}
}

func TestParseGRPCTimeout(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1H", time.Hour, true},
		{"2M", 2 * time.Minute, true},
		{"3S", 3 * time.Second, true},
		{"250m", 250 * time.Millisecond, true},
		{"7u", 7 * time.Microsecond, true},
		{"9n", 9, true},
		{"", 0, false},
		{"m", 0, false},
		{"100", 0, false},
		{"1x", 0, false},
		{"-1S", 0, false},
		{"123456789S", 0, false}, // nine digits
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseGRPCTimeout(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("parseGRPCTimeout(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}
