package harness

import (
	"math"
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
		{"the longest there is", math.MaxInt64, "2562048H"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := formatGRPCTimeout(tt.d)
			if got != tt.want {
				t.Fatalf("formatGRPCTimeout(%v) = %q, want %q", tt.d, got, tt.want)
			}
			back, ok := parseGRPCTimeout(got)
			if ok && back < tt.d || !ok && tt.d < math.MaxInt64-time.Hour { // beyond that, no bound
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
		{"99999999H", 0, false},  // beyond a time.Duration: no bound
		{"2000000H", 2_000_000 * time.Hour, true},
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

// FuzzParseGRPCTimeout: whatever a client sends as grpc-timeout, the proxy
// reads a non-negative bound or none, and what it sends on reads back to
// at least the same bound.
func FuzzParseGRPCTimeout(f *testing.F) {
	for _, s := range []string{"1H", "2562047H", "250m", "99999999H", "99999999n", "-1S", "", "1x", "00000001u"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseGRPCTimeout(s)
		if !ok {
			return
		}
		if d < 0 {
			t.Fatalf("parseGRPCTimeout(%q) = %v", s, d)
		}
		back, ok := parseGRPCTimeout(formatGRPCTimeout(d))
		if ok && back < d || !ok && d < math.MaxInt64-time.Hour { // beyond that, no bound
			t.Fatalf("%q: %v went out as %q, read back as %v, %v", s, d, formatGRPCTimeout(d), back, ok)
		}
	})
}
