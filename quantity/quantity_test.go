package quantity_test

import (
	"strings"
	"testing"

	"github.com/resctl/resctl/quantity"
)

func TestPercent_UnmarshalText(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    quantity.Percent
		wantStr string
		wantErr string
	}{
		{name: "with percent sign", in: "50%", want: 50, wantStr: "50%"},
		{name: "bare number", in: "50", want: 50, wantStr: "50%"},
		{name: "fraction", in: "12.5%", want: 12.5, wantStr: "12.5%"},
		{name: "zero", in: "0", want: 0, wantStr: "0%"},
		{name: "hundred", in: "100", want: 100, wantStr: "100%"},
		{name: "surrounding space", in: " 50 % ", want: 50, wantStr: "50%"},
		{name: "negative", in: "-1", wantErr: "percentage -1 is outside 0%..100%"},
		{name: "above hundred", in: "101%", wantErr: "percentage 101 is outside 0%..100%"},
		{name: "not a number", in: "abc", wantErr: `invalid percentage "abc"`},
		{name: "NaN", in: "NaN", wantErr: `invalid percentage "NaN"`},
		{name: "infinity", in: "+Inf%", wantErr: `invalid percentage "+Inf%"`},
		{name: "empty", in: "", wantErr: `invalid percentage ""`},
		{name: "percent sign only", in: "%", wantErr: `invalid percentage "%"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got quantity.Percent
			err := got.UnmarshalText([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("UnmarshalText(%q) = %v (value %v), want error containing %q", tt.in, err, got, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("UnmarshalText(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("UnmarshalText(%q) = %v, want %v", tt.in, float64(got), float64(tt.want))
			}
			if s := got.String(); s != tt.wantStr {
				t.Errorf("String() = %q, want %q", s, tt.wantStr)
			}
		})
	}
}

func TestPercent_Fraction(t *testing.T) {
	if got := quantity.Percent(12.5).Fraction(); got != 0.125 {
		t.Errorf("Percent(12.5).Fraction() = %v, want 0.125", got)
	}
}

func TestPercent_MarshalText(t *testing.T) {
	tests := []struct {
		name string
		in   quantity.Percent
		want string
	}{
		{"zero", 0, "0%"},
		{"half a percent", 0.5, "0.5%"},
		{"fraction", 12.5, "12.5%"},
		{"whole", 50, "50%"},
		{"three nines", 99.9, "99.9%"},
		{"all", 100, "100%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, err := tt.in.MarshalText()
			if err != nil {
				t.Fatalf("MarshalText: %v", err)
			}
			if string(text) != tt.want || tt.in.String() != tt.want {
				t.Errorf("MarshalText() = %q, String() = %q, want %q", text, tt.in.String(), tt.want)
			}
			var back quantity.Percent
			if err := back.UnmarshalText(text); err != nil {
				t.Fatalf("UnmarshalText(%q): %v", text, err)
			}
			if back != tt.in {
				t.Errorf("round trip through %q = %v, want %v", text, float64(back), float64(tt.in))
			}
		})
	}
}

func TestRate_UnmarshalText(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    quantity.Rate
		wantStr string
		wantErr string
	}{
		{name: "per second", in: "200/s", want: 200, wantStr: "200/s"},
		{name: "per minute", in: "12000/m", want: 200, wantStr: "200/s"},
		{name: "per min", in: "60/min", want: 1, wantStr: "1/s"},
		{name: "per hour", in: "7200/h", want: 2, wantStr: "2/s"},
		{name: "per millisecond", in: "5/ms", want: 5000, wantStr: "5000/s"},
		{name: "bare number", in: "50", want: 50, wantStr: "50/s"},
		{name: "per duration", in: "1/500ms", want: 2, wantStr: "2/s"},
		{name: "spaces around slash", in: " 10 / s ", want: 10, wantStr: "10/s"},
		{name: "fractional", in: "0.5/s", want: 0.5, wantStr: "0.5/s"},
		{name: "zero", in: "0/s", wantErr: `rate "0/s" must be above zero`},
		{name: "bare zero", in: "0", wantErr: `rate "0" must be above zero`},
		{name: "negative", in: "-5/s", wantErr: `rate "-5/s" must be above zero`},
		{name: "unknown unit", in: "10/x", wantErr: `unknown time unit "x"`},
		{name: "zero duration unit", in: "10/0s", wantErr: `unknown time unit "0s"`},
		{name: "missing unit", in: "10/", wantErr: `unknown time unit ""`},
		{name: "not a number", in: "fast", wantErr: `invalid rate "fast"`},
		{name: "NaN", in: "NaN/s", wantErr: `invalid rate "NaN/s"`},
		{name: "empty", in: "", wantErr: `invalid rate ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got quantity.Rate
			err := got.UnmarshalText([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("UnmarshalText(%q) = %v (value %v), want error containing %q", tt.in, err, got, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("UnmarshalText(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("UnmarshalText(%q) = %v, want %v", tt.in, float64(got), float64(tt.want))
			}
			if got.PerSecond() != float64(tt.want) {
				t.Errorf("PerSecond() = %v, want %v", got.PerSecond(), float64(tt.want))
			}
			if s := got.String(); s != tt.wantStr {
				t.Errorf("String() = %q, want %q", s, tt.wantStr)
			}
		})
	}
}

func TestRate_MarshalText(t *testing.T) {
	tests := []struct {
		name string
		in   quantity.Rate
		want string
	}{
		{"half per second", 0.5, "0.5/s"},
		{"one", 1, "1/s"},
		{"fractional", 1234.5, "1234.5/s"},
		{"hundreds", 200, "200/s"},
		{"thousands", 5000, "5000/s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, err := tt.in.MarshalText()
			if err != nil {
				t.Fatalf("MarshalText: %v", err)
			}
			if string(text) != tt.want || tt.in.String() != tt.want {
				t.Errorf("MarshalText() = %q, String() = %q, want %q", text, tt.in.String(), tt.want)
			}
			var back quantity.Rate
			if err := back.UnmarshalText(text); err != nil {
				t.Fatalf("UnmarshalText(%q): %v", text, err)
			}
			if back != tt.in {
				t.Errorf("round trip through %q = %v, want %v", text, float64(back), float64(tt.in))
			}
		})
	}
}

func TestBytes_UnmarshalText(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    quantity.Bytes
		wantStr string
		wantErr string
	}{
		{name: "bare number", in: "512", want: 512, wantStr: "512B"},
		{name: "bytes", in: "512B", want: 512, wantStr: "512B"},
		{name: "kibibytes", in: "64KiB", want: 64 << 10, wantStr: "64KiB"},
		{name: "fractional mebibytes", in: "1.5MiB", want: 3 << 19, wantStr: "1.5MiB"},
		{name: "gibibytes", in: "2GiB", want: 2 << 30, wantStr: "2GiB"},
		{name: "kilobytes", in: "3KB", want: 3000, wantStr: "3KB"},
		{name: "megabytes", in: "2MB", want: 2_000_000, wantStr: "2MB"},
		{name: "gigabytes", in: "1GB", want: 1_000_000_000, wantStr: "1GB"},
		// 1.001 * 1e6 is 1000999.99… in floating point: rounded, not truncated.
		{name: "decimal fraction", in: "1.001MB", want: 1_001_000, wantStr: "1.001MB"},
		{name: "space before unit", in: "4 KiB", want: 4096, wantStr: "4KiB"},
		{name: "zero", in: "0", want: 0, wantStr: "0B"},
		{name: "negative", in: "-1", wantErr: `size "-1" must not be negative`},
		{name: "negative with unit", in: "-1KiB", wantErr: `size "-1KiB" must not be negative`},
		{name: "not a number", in: "lots", wantErr: `invalid size "lots"`},
		{name: "unit only", in: "KiB", wantErr: `invalid size "KiB"`},
		{name: "unknown unit", in: "5TB", wantErr: `invalid size "5TB"`},
		{name: "NaN", in: "NaN", wantErr: `invalid size "NaN"`},
		{name: "empty", in: "", wantErr: `invalid size ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got quantity.Bytes
			err := got.UnmarshalText([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("UnmarshalText(%q) = %v (value %d), want error containing %q", tt.in, err, int64(got), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("UnmarshalText(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("UnmarshalText(%q) = %d, want %d", tt.in, int64(got), int64(tt.want))
			}
			if s := got.String(); s != tt.wantStr {
				t.Errorf("String() = %q, want %q", s, tt.wantStr)
			}
		})
	}
}

func TestBytes_MarshalText(t *testing.T) {
	tests := []struct {
		name string
		in   quantity.Bytes
		want string
	}{
		{"zero", 0, "0B"},
		{"one byte", 1, "1B"},
		{"a decimal kilobyte", 1000, "1KB"},
		{"below a kilobyte", 999, "999B"},
		{"not exact in a larger unit", 1234567, "1234.567KB"},
		{"one kibibyte", 1 << 10, "1KiB"},
		{"fractional kibibytes", 1536, "1.5KiB"},
		{"kibibytes", 64 << 10, "64KiB"},
		{"fractional mebibytes", 3 << 19, "1.5MiB"},
		{"gibibytes", 3 << 30, "3GiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, err := tt.in.MarshalText()
			if err != nil {
				t.Fatalf("MarshalText: %v", err)
			}
			if string(text) != tt.want || tt.in.String() != tt.want {
				t.Errorf("MarshalText() = %q, String() = %q, want %q", text, tt.in.String(), tt.want)
			}
			var back quantity.Bytes
			if err := back.UnmarshalText(text); err != nil {
				t.Fatalf("UnmarshalText(%q): %v", text, err)
			}
			if back != tt.in {
				t.Errorf("round trip through %q = %d, want %d", text, int64(back), int64(tt.in))
			}
		})
	}
}
