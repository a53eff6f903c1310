package verify

import (
	"slices"
	"strconv"
)

// Kind is the physical kind of a series' value. It decides which literals a
// series may be compared with (a latency needs a duration, never a bare
// number) and how [FormatValue] renders it.
//
// The zero Kind is deliberately invalid, so a forgotten assignment is not
// silently mistaken for a ratio.
type Kind int

// The kinds of series and literals. Values of every kind are held in
// canonical units: see the package documentation.
const (
	KindRatio    Kind = iota + 1 // a fraction: 0.99 is 99%
	KindDuration                 // seconds
	KindCount                    // a plain tally, such as requests sent
	KindRate                     // events per second
	KindBytes                    // a size in bytes
	KindPlain                    // a unitless number, such as a scraped gauge of goroutines
)

// String returns the kind's lower-case name, as used in messages.
func (k Kind) String() string {
	switch k {
	case KindRatio:
		return "ratio"
	case KindDuration:
		return "duration"
	case KindCount:
		return "count"
	case KindRate:
		return "rate"
	case KindBytes:
		return "bytes"
	case KindPlain:
		return "plain"
	default:
		return "Kind(" + strconv.Itoa(int(k)) + ")"
	}
}

// series lists every identifier the language knows, with its kind. These are
// the load series measured over a phase or window; Env implementations must
// supply values for them in canonical units. min and max are also functions:
// followed by "(" they are calls.
var series = map[string]Kind{
	"requests":      KindCount,
	"rps":           KindRate,
	"success_rate":  KindRatio,
	"error_rate":    KindRatio,
	"fallback_rate": KindRatio,
	// upstream_success_rate is success_rate less what fallbacks served.
	"upstream_success_rate": KindRatio,
	"p50":                   KindDuration,
	"p90":                   KindDuration,
	"p95":                   KindDuration,
	"p99":                   KindDuration,
	"p999":                  KindDuration,
	"min":                   KindDuration,
	"mean":                  KindDuration,
	"max":                   KindDuration,
	// The latencies above are response times, from when each request was
	// due; these are service times, from when it really went out, and
	// how late the generator sent (phases and the whole run only).
	"service_p50":  KindDuration,
	"service_p90":  KindDuration,
	"service_p95":  KindDuration,
	"service_p99":  KindDuration,
	"service_p999": KindDuration,
	"lag_p99":      KindDuration,
	"lag_max":      KindDuration,
	"dropped":      KindCount,
}

// seriesNames is series' keys, sorted, computed once: it is the candidate
// list for "did you mean" suggestions and the answer of Names.
var seriesNames = func() []string {
	names := make([]string, 0, len(series))
	for name := range series {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}()

// Lookup reports the kind of a known series identifier. Callers that produce
// values for an Env use it to know which unit a series must be given in.
func Lookup(name string) (Kind, bool) {
	k, ok := series[name]
	return k, ok
}

// Names returns every known series name, sorted. The slice is a fresh copy,
// so callers (help text, completion) may keep or modify it.
func Names() []string {
	return slices.Clone(seriesNames)
}

// suggest returns the candidate closest to name by Levenshtein distance, if
// one is within distance 2 and the distance is smaller than name's length
// (otherwise the "typo" was mostly replaced and the hint would be noise, as
// with "s" → "rps"). Ties go to the candidate of the same length whose
// differing characters are nearest, so p98 suggests p99 rather than p90, and
// then to the first in candidates' order.
func suggest(name string, candidates []string) (string, bool) {
	src := []rune(name)
	best, bestDist, bestGap := "", 3, 0
	for _, c := range candidates {
		cand := []rune(c)
		d := levenshtein(src, cand)
		if d > 2 || d >= len(src) {
			continue
		}
		gap := runeGap(src, cand)
		if d < bestDist || (d == bestDist && gap < bestGap) {
			best, bestDist, bestGap = c, d, gap
		}
	}
	return best, best != ""
}

// levenshtein is the classic edit distance over runes: insertions,
// deletions and substitutions each cost 1.
func levenshtein(a, b []rune) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// runeGap measures how far apart two equal-length strings' differing runes
// are (|'8'-'9'| = 1, |'8'-'0'| = 8); it only breaks ties between equally
// distant suggestions. Strings of different lengths get a gap larger than
// any same-length one, so a plain substitution is preferred.
func runeGap(a, b []rune) int {
	if len(a) != len(b) {
		return 1 << 30
	}
	gap := 0
	for i := range a {
		d := int(a[i]) - int(b[i])
		gap += max(d, -d)
	}
	return gap
}
