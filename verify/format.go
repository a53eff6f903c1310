package verify

import (
	"math"
	"strconv"
	"strings"
)

// FormatValue renders a canonical value of kind k for people: ratios as
// percentages ("99.82%", "100%"), durations in the best unit with at most
// three significant digits ("850µs", "12.3ms", "1.25s"), counts as integers
// ("1234"), rates per second ("49.9/s"), sizes in binary units
// ("512MiB") and plain numbers like counts ("12", "0.25"). It is what Result.Observed is made of, and reports can use it
// for any other value of a known kind. Non-finite values print as "NaN",
// "+Inf" or "-Inf"; an unknown kind prints the plain number.
func FormatValue(k Kind, v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	switch k {
	case KindRatio:
		return formatPercent(v)
	case KindDuration:
		return formatScaled(v, durationUnits)
	case KindCount, KindPlain:
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			return strconv.FormatFloat(v, 'f', 0, 64)
		}
		return formatSig(v)
	case KindRate:
		return formatSig(v) + "/s"
	case KindBytes:
		return formatScaled(v, byteUnits)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// formatPercent prints a fraction as a percentage with two decimals,
// trailing zeros trimmed. It adds decimals (up to six) rather than round a
// value that is not exactly 0% or 100% to "0%" or "100%": a success rate of
// 99.999% shown as 100% next to a failed "== 100%" check would mislead.
func formatPercent(v float64) string {
	if v == 0 {
		return "0%" // also for -0
	}
	p := v * 100
	s := ""
	for decimals := 2; decimals <= 6; decimals++ {
		s = trimZeros(strconv.FormatFloat(p, 'f', decimals, 64))
		if (s == "100" && p != 100) || s == "0" || s == "-0" {
			continue
		}
		break
	}
	return s + "%"
}

// scaledUnit is one rung of a unit ladder: values below limit (counted in
// this unit) are printed in it.
type scaledUnit struct {
	name  string
	size  float64 // in canonical units
	limit float64 // switch to the next unit at this many of this one
}

var durationUnits = []scaledUnit{
	{"ns", 1e-9, 1000},
	{"µs", 1e-6, 1000},
	{"ms", 1e-3, 1000},
	{"s", 1, 60},
	{"m", 60, 60},
	{"h", 3600, math.Inf(1)},
}

var byteUnits = []scaledUnit{
	{"B", 1, 1024},
	{"KiB", 1 << 10, 1024},
	{"MiB", 1 << 20, 1024},
	{"GiB", 1 << 30, 1024},
	{"TiB", 1 << 40, math.Inf(1)},
}

// formatScaled prints v in the first unit of ladder in which it, once
// rounded, stays below the unit's limit, so 999.7ms prints as "1s" rather
// than "1000ms". Zero prints in the canonical unit ("0s", "0B").
func formatScaled(v float64, ladder []scaledUnit) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	if v == 0 {
		for _, u := range ladder {
			if u.size == 1 {
				return "0" + u.name
			}
		}
	}
	for i, u := range ladder {
		x := v / u.size
		if x >= u.limit && i < len(ladder)-1 {
			continue
		}
		s := formatSig(x)
		if r, _ := strconv.ParseFloat(s, 64); r >= u.limit && i < len(ladder)-1 {
			continue
		}
		return sign + s + u.name
	}
	panic("unreachable: the last unit has no limit")
}

// formatSig prints x with three significant digits, but never rounds away
// integer digits (1234 stays "1234") and trims trailing zeros ("1.5", not
// "1.50"). Magnitudes far outside everyday ranges fall back to exponent
// notation rather than print dozens of zeros.
func formatSig(x float64) string {
	if x == 0 {
		return "0"
	}
	ax := math.Abs(x)
	if ax < 1e-6 || ax >= 1e15 {
		return strconv.FormatFloat(x, 'g', 3, 64)
	}
	decimals := max(0, 2-int(math.Floor(math.Log10(ax))))
	s := trimZeros(strconv.FormatFloat(x, 'f', decimals, 64))
	if s == "-0" {
		return "0"
	}
	return s
}

// trimZeros drops trailing fractional zeros and a dangling decimal point.
func trimZeros(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
