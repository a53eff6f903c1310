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
	perSec := v * float64(time.Second) / float64(unit)
	if math.IsInf(perSec, 0) {
		return fmt.Errorf("rate %q is too large", s)
	}
	*r = Rate(perSec)
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
	n := math.Round(v * mult)
	if n >= math.MaxInt64 {
		return fmt.Errorf("size %q is too large", s)
	}
	*b = Bytes(n)
	return nil
}

// printUnits are tried in order; the first that is no larger than the size
// and prints it exactly with at most three decimals wins.
var printUnits = []struct {
	suffix string
	mult   int64
}{
	{"GiB", 1 << 30}, {"GB", 1e9}, {"MiB", 1 << 20}, {"MB", 1e6}, {"KiB", 1 << 10}, {"KB", 1e3},
}

// String prints the size so that it reads back to the same number, in the
// largest unit that says it exactly: "64KiB", "1.5MiB", "2MB", "1049B".
func (b Bytes) String() string {
	n := int64(b)
	for _, u := range printUnits {
		if n >= u.mult && (n%u.mult)*1000%u.mult == 0 {
			return trimFloat(float64(n/u.mult)+float64(n%u.mult)/float64(u.mult)) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// MarshalText prints the size as String does.
func (b Bytes) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// trimFloat prints v with as many digits as it takes to read back exactly,
// and no more: 50, 12.5, 0.016666666666666666.
func trimFloat(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64)
}
