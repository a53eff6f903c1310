package verify_test

import (
	"math"
	"testing"

	"github.com/resctl/resctl/verify"
)

func TestFormatValue(t *testing.T) {
	tests := []struct {
		name string
		kind verify.Kind
		v    float64
		want string
	}{
		{"ratio two decimals", verify.KindRatio, 0.9982, "99.82%"},
		{"ratio one decimal", verify.KindRatio, 0.995, "99.5%"},
		{"ratio whole", verify.KindRatio, 1, "100%"},
		{"ratio half", verify.KindRatio, 0.5, "50%"},
		{"ratio zero", verify.KindRatio, 0, "0%"},
		{"ratio negative zero", verify.KindRatio, math.Copysign(0, -1), "0%"},
		{"ratio rounds", verify.KindRatio, 0.123456, "12.35%"},
		{"ratio not quite 100", verify.KindRatio, 0.99999, "99.999%"},
		{"ratio not quite 0", verify.KindRatio, 0.0000123, "0.001%"},
		{"ratio above one", verify.KindRatio, 1.5, "150%"},

		{"duration zero", verify.KindDuration, 0, "0s"},
		{"duration sub-nanosecond", verify.KindDuration, 5e-10, "0.5ns"},
		{"duration nanoseconds", verify.KindDuration, 250e-9, "250ns"},
		{"duration microseconds", verify.KindDuration, 850e-6, "850µs"},
		{"duration milliseconds", verify.KindDuration, 0.121, "121ms"},
		{"duration three digits", verify.KindDuration, 0.012345, "12.3ms"},
		{"duration seconds", verify.KindDuration, 1.25, "1.25s"},
		{"duration trims zeros", verify.KindDuration, 2, "2s"},
		{"duration rounds up a unit", verify.KindDuration, 0.9997, "1s"},
		{"duration minutes", verify.KindDuration, 90, "1.5m"},
		{"duration rounds up to minutes", verify.KindDuration, 59.99, "1m"},
		{"duration hours", verify.KindDuration, 7200, "2h"},
		{"duration many hours", verify.KindDuration, 1e7, "2778h"},
		{"duration negative", verify.KindDuration, -0.5, "-500ms"},

		{"count", verify.KindCount, 1234, "1234"},
		{"count zero", verify.KindCount, 0, "0"},
		{"count large", verify.KindCount, 12345678, "12345678"},
		{"count fractional", verify.KindCount, 2.5, "2.5"},

		{"rate whole", verify.KindRate, 200, "200/s"},
		{"rate three digits", verify.KindRate, 49.87, "49.9/s"},
		{"rate keeps integer digits", verify.KindRate, 1234.4, "1234/s"},
		{"rate small", verify.KindRate, 0.05123, "0.0512/s"},
		{"rate zero", verify.KindRate, 0, "0/s"},

		{"bytes", verify.KindBytes, 512, "512B"},
		{"bytes zero", verify.KindBytes, 0, "0B"},
		{"kibibytes", verify.KindBytes, 1536, "1.5KiB"},
		{"mebibytes", verify.KindBytes, 512 << 20, "512MiB"},
		{"gibibytes", verify.KindBytes, 1.25 * (1 << 30), "1.25GiB"},

		{"plain whole", verify.KindPlain, 12, "12"},
		{"plain fraction", verify.KindPlain, 0.123456, "0.123"},
		{"plain large", verify.KindPlain, 12345678, "12345678"},

		{"NaN", verify.KindDuration, math.NaN(), "NaN"},
		{"infinity", verify.KindRatio, math.Inf(1), "+Inf"},
		{"unknown kind", verify.Kind(0), 0.25, "0.25"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := verify.FormatValue(tt.kind, tt.v); got != tt.want {
				t.Errorf("FormatValue(%v, %v) = %q, want %q", tt.kind, tt.v, got, tt.want)
			}
		})
	}
}
