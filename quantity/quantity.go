// Package quantity holds the small value types that scenario files, the fault
// switchboard and the guard policies share: percentages, request rates and
// byte sizes. Each parses the spellings a person writes in YAML ("50%",
// "200/s", "64KiB") through encoding.TextUnmarshaler and prints them back the
// same way, so a value survives a round trip through a report.
//
// It imports nothing of resctl's, so every package may depend on it.
package quantity

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Percent is a share of traffic from 0 to 100. "50%", "50" and 50 all mean
// one half; values outside 0..100 are rejected when parsed, never clamped.
type Percent float64

// UnmarshalText parses "50%", "12.5" or "100".
func (p *Percent) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	s = strings.TrimSpace(strings.TrimSuffix(s, "%"))
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("invalid percentage %q: use a number from 0 to 100, e.g. 50%%", string(b))
	}
	if v < 0 || v > 100 {
		return fmt.Errorf("percentage %s is outside 0%%..100%%", trimFloat(v))
	}
	*p = Percent(v)
	return nil
}

// MarshalText prints the percentage with a % sign.
func (p Percent) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// String prints the percentage as "50%".
func (p Percent) String() string { return trimFloat(float64(p)) + "%" }

// Fraction returns the share as a probability in 0..1.
func (p Percent) Fraction() float64 { return float64(p) / 100 }

// Rate is a request rate in requests per second.
type Rate float64

// UnmarshalText parses "200/s", "12000/m", "5/ms" or a bare number of
// requests per second. A rate must be positive: a zero rate is an experiment
// that sends nothing, which is always a mistake in a scenario.
func (r *Rate) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	num, per, hasPer := strings.Cut(s, "/")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("invalid rate %q: write requests per unit of time, e.g. 200/s", s)
	}
	unit := time.Second
	if hasPer {
		per = strings.TrimSpace(per)
		switch per {
		case "s":
		case "m", "min":
			unit = time.Minute
		case "h":
			unit = time.Hour
		case "ms":
			unit = time.Millisecond
		default:
			d, derr := time.ParseDuration(per)
			if derr != nil || d <= 0 {
				return fmt.Errorf("invalid rate %q: unknown time unit %q (use s, m, h or ms)", s, per)
			}
			unit = d
		}
	}
	if v <= 0 {
		return fmt.Errorf("rate %q must be above zero", s)
	}
	*r = Rate(v * float64(time.Second) / float64(unit))
	return nil
}

// MarshalText prints the rate as "200/s".
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// String prints the rate as "200/s".
func (r Rate) String() string { return trimFloat(float64(r)) + "/s" }

// PerSecond returns the rate as requests per second.
func (r Rate) PerSecond() float64 { return float64(r) }

// Bytes is a size in bytes, written as "512", "64KiB", "1.5MiB" or "2MB".
type Bytes int64

var byteUnits = []struct {
	suffix string
	mult   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9},
	{"B", 1},
}

// UnmarshalText parses a byte size; negative sizes are rejected.
func (b *Bytes) UnmarshalText(t []byte) error {
	s := strings.TrimSpace(string(t))
	mult := 1.0
	num := s
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("invalid size %q: write bytes, e.g. 512, 64KiB or 2MiB", s)
	}
	if v < 0 {
		return fmt.Errorf("size %q must not be negative", s)
	}
	*b = Bytes(v * mult)
	return nil
}

// String prints the size in the largest binary unit that keeps it exact
// enough to read: "64KiB", "1.5MiB", "512B".
func (b Bytes) String() string {
	v := float64(b)
	switch {
	case v >= 1<<30:
		return trimFloat(v/(1<<30)) + "GiB"
	case v >= 1<<20:
		return trimFloat(v/(1<<20)) + "MiB"
	case v >= 1<<10:
		return trimFloat(v/(1<<10)) + "KiB"
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// MarshalText prints the size as String does.
func (b Bytes) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

func trimFloat(v float64) string {
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}
