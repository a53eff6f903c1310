package verify_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/resctl/resctl/verify"
)

// validCases are well-formed, well-typed expressions with the series they use.
var validCases = []struct {
	name   string
	src    string
	idents []string
}{
	{"readme example", "success_rate >= 99% and p99 < 150ms", []string{"p99", "success_rate"}},
	{"ratio as fraction", "success_rate >= 0.99", []string{"success_rate"}},
	{"symbolic and", "p99 < 150ms && p50 <= 50ms", []string{"p50", "p99"}},
	{"symbolic or", "error_rate < 0.1% || fallback_rate == 0", []string{"error_rate", "fallback_rate"}},
	{"not", "not (p99 > 1s)", []string{"p99"}},
	{"bang", "!(p99 > 1s)", []string{"p99"}},
	{"not binds looser than comparison", "not p99 > 1s and requests > 0", []string{"p99", "requests"}},
	{"and binds tighter than or", "p99 < 1s or p50 < 1s and p95 < 1s", []string{"p50", "p95", "p99"}},
	{"nested parens", "((p99 < 1s))", []string{"p99"}},
	{"scaled series", "mean < 2 * p50", []string{"mean", "p50"}},
	{"scaled on the right", "p99 <= p50 * 3", []string{"p50", "p99"}},
	{"divided by number", "max / 2 < 1s", []string{"max"}},
	{"duration ratio is plain", "p99 / p50 < 3", []string{"p50", "p99"}},
	{"difference of durations", "max - min <= 500ms", []string{"max", "min"}},
	{"sum with literal", "p50 + 10ms < p99", []string{"p50", "p99"}},
	{"unary minus", "-p99 > -1s", []string{"p99"}},
	{"rate literal", "rps >= 200/s", []string{"rps"}},
	{"rate bare number", "rps >= 200", []string{"rps"}},
	{"count with exponent", "requests > 1e3", []string{"requests"}},
	{"ratio times count", "requests >= 1000 and error_rate * requests < 10", []string{"error_rate", "requests"}},
	{"ratio plus number", "success_rate + 0.001 >= 1", []string{"success_rate"}},
	{"micro spellings", "p99 < 850µs or p99 < 850us or p99 < 850μs", []string{"p99"}},
	{"all duration units", "p999 < 100ns + 1m + 1h + 2s + 3ms", []string{"p999"}},
	{"not equal", "p90 != 0s", []string{"p90"}},
	{"byte literals", "512MiB < 1GiB and 1KB <= 1KiB and 1MB < 1GB", nil},
	{"no spaces", "p95<=.5s&&rps>1", []string{"p95", "rps"}},
	{"repeated series", "p99 > 1ms and p99 < 1s", []string{"p99"}},
	{"surrounding space", "  p99 < 1s\t", []string{"p99"}},
	{"ratio compared with one", "success_rate <= 1", []string{"success_rate"}},
}

// invalidCases are rejected expressions with the exact column and a
// substring of the message.
var invalidCases = []struct {
	name string
	src  string
	col  int
	msg  string
}{
	{"empty", "", 1, "empty expression"},
	{"blank", "   ", 1, "empty expression"},
	{"unknown series with suggestion", "p98 < 1s", 1, `unknown series "p98" (did you mean "p99"?)`},
	{"unknown series later", "p99 < 1s and sucess_rate > 99%", 14, `unknown series "sucess_rate" (did you mean "success_rate"?)`},
	{"unknown series no suggestion", "latency < 1s", 1, `unknown series "latency"`},
	{"upper-case series", "P99 < 1s", 1, `(did you mean "p99"?)`},
	{"not a condition", "p99", 1, "expression must be a condition, such as p99 < 150ms"},
	{"arithmetic is not a condition", " p99 + 1ms", 2, "expression must be a condition"},
	{"bare number for latency", "p99 < 150", 7, "p99 is a latency; give a unit, e.g. 150ms"},
	{"small bare number for latency", "mean < 0.5", 8, "mean is a latency; give a unit, e.g. 0.5s"},
	{"bare number on the left", "150 > p99", 1, "p99 is a latency; give a unit"},
	{"bare number for scaled latency", "2*p50 < 3", 9, "2*p50 is a duration; give a unit"},
	{"negative bare number", "-p99 > -1", 8, "-p99 is a duration; give a unit"},
	{"bare number added to latency", "p99 + 5 < 1s", 7, "p99 is a latency; give a unit, e.g. 5s"},
	{"ratio vs duration", "success_rate < 150ms", 16, "cannot compare success_rate (a ratio) with 150ms (a duration)"},
	{"latency vs ratio", "p99 < 99%", 7, "cannot compare p99 (a latency) with 99% (a ratio)"},
	{"latency vs size", "p99 < 512MiB", 7, "cannot compare p99 (a latency) with 512MiB (a size)"},
	{"plain vs duration", "p99/p50 < 2ms", 11, "cannot compare p99/p50 (a plain number) with 2ms (a duration)"},
	{"ratio missing percent", "success_rate >= 99", 17, "success_rate is a ratio; write 99% or 0.99"},
	{"ratio missing percent on left", "99.5 <= (success_rate)", 1, "success_rate is a ratio; write 99.5% or 0.995"},
	{"add mismatch", "p99 + requests > 1s", 7, "cannot add p99 (a latency) and requests (a count)"},
	{"subtract mismatch", "p99 - success_rate < 1s", 7, "cannot subtract success_rate (a ratio) from p99 (a latency)"},
	{"multiply durations", "p99 * p50 < 1s", 7, "cannot multiply p99 (a latency) by p50 (a latency)"},
	{"divide by duration", "requests / p99 > 1", 12, "cannot divide requests (a count) by p99 (a latency)"},
	{"number divided by ratio", "100/success_rate > 1", 5, "cannot divide 100 (a plain number) by success_rate (a ratio)"},
	{"chained comparison", "1ms < p99 < 2ms", 11, "comparisons cannot be chained"},
	{"chained equality", "p99 == p50 != p90", 12, "comparisons cannot be chained"},
	{"and needs conditions", "p99 and p50 < 1s", 1, `expected a condition on each side of "and"`},
	{"or needs conditions right", "p50 < 1s || (p99)", 13, `expected a condition on each side of "||"`},
	{"not needs a condition", "not p99", 5, `expected a condition after "not"`},
	{"bang needs a condition", "!requests", 2, `expected a condition after "!"`},
	{"condition in arithmetic", "(p99 < 1s) + 1 > 2", 1, `"+" needs a number on each side, not a condition`},
	{"condition compared", "1 < (p99 < 1s)", 5, `"<" needs a number on each side, not a condition`},
	{"negated condition", "-(p99 < 1s) < 1", 2, "cannot negate a condition"},
	{"unexpected character", "p99 < 1s $", 10, `unexpected character "$"`},
	{"single equals", "p99 = 1s", 5, `unexpected character "=" (did you mean "=="?)`},
	{"single ampersand", "p99 < 1s & p50 < 1s", 10, `unexpected character "&"`},
	{"single pipe", "p99 < 1s | p50 < 1s", 10, `unexpected character "|"`},
	{"detached percent", "99 % > error_rate", 4, `unexpected character "%"`},
	{"stray dot", "p99 < 1.s", 8, `unexpected character "."`},
	{"unexpected end", "p99 <", 6, `unexpected end of expression, expected a number, series or "("`},
	{"unexpected end after and", "p99 < 1s and ", 14, "unexpected end of expression"},
	{"unexpected end after minus", "p99 < -", 8, "unexpected end of expression"},
	{"unexpected operator", "p99 < < 1s", 7, `unexpected "<", expected a number, series or "("`},
	{"empty parens", "() and p99 < 1s", 2, `unexpected ")", expected a number`},
	{"unary plus", "+p99 < 1s", 1, `unexpected "+"`},
	{"unclosed parenthesis", "(p99 < 1s", 1, "unclosed parenthesis"},
	{"unclosed inner parenthesis", "p50 < 1s and (p99 < 1s or (p95 < 1s)", 14, "unclosed parenthesis"},
	{"missing operator in parens", "(p99 p50)", 6, `unexpected "p50", expected an operator or ")"`},
	{"unmatched close", "p99 < 1s)", 9, `unexpected ")" without matching "("`},
	{"trailing tokens", "p99 < 1s p50 < 1s", 10, `unexpected "p50", expected an operator or end of expression`},
	{"trailing number", "p99 < 1s 2", 10, `unexpected "2"`},
	{"misspelt keyword", "p99 < 1s adn p50 < 1s", 10, `(did you mean "and"?)`},
	{"upper-case and", "p99 < 1s AND p50 < 1s", 10, `keywords are lower case: write "and"`},
	{"upper-case not", "NOT p99 < 1s", 1, `keywords are lower case: write "not"`},
	{"unknown unit", "p99 < 150mss", 10, `unknown unit "mss"; use ns, us, ms, s, m, h, %, /s, KiB, MiB, GiB`},
	{"compound duration", "p99 < 1m30s", 8, `unknown unit "m30s"`},
	{"dangling exponent", "requests > 1e", 13, `unknown unit "e"`},
	{"detached unit", "p99 < 150 ms", 11, `a unit must follow its number directly: write "150ms"`},
	{"out of range", "1e999 > p99", 1, `number "1e999" is out of range`},
	{"huge exponent", "requests < 1e99999999999999999999", 12, "out of range"},
	{"first error wins", "p98 < 1s $", 1, `unknown series "p98"`},
	{"too deep", strings.Repeat("(", 500) + "p99 < 1s" + strings.Repeat(")", 500), 201, "nested too deeply"},
}

func TestParse_Valid(t *testing.T) {
	for _, tt := range validCases {
		t.Run(tt.name, func(t *testing.T) {
			e, err := verify.Parse(tt.src)
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tt.src, err)
			}
			if got := e.String(); got != tt.src {
				t.Errorf("String() = %q, want the source %q", got, tt.src)
			}
			if got := e.Idents(); !slices.Equal(got, tt.idents) {
				t.Errorf("Idents() = %q, want %q", got, tt.idents)
			}
		})
	}
}

func TestParse_Invalid(t *testing.T) {
	for _, tt := range invalidCases {
		t.Run(tt.name, func(t *testing.T) {
			e, err := verify.Parse(tt.src)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want an error", tt.src, e)
			}
			var se *verify.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %T (%v), want *verify.SyntaxError", tt.src, err, err)
			}
			if se.Col != tt.col {
				t.Errorf("Parse(%q): col = %d, want %d (msg %q)", tt.src, se.Col, tt.col, se.Msg)
			}
			if !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("Parse(%q): msg = %q, want it to contain %q", tt.src, se.Msg, tt.msg)
			}
		})
	}
}

func TestParse_ColumnsCountRunes(t *testing.T) {
	// µ is two bytes in UTF-8 but one column.
	_, err := verify.Parse("p99 < 850µs and p50 < 1x")
	var se *verify.SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("error = %v, want *SyntaxError", err)
	}
	if se.Col != 24 {
		t.Errorf("col = %d, want 24 (msg %q)", se.Col, se.Msg)
	}
}

func TestExpr_Idents(t *testing.T) {
	e, err := verify.Parse("success_rate >= 99% and p99 < 150ms and p50 < p99")
	if err != nil {
		t.Fatal(err)
	}
	got := e.Idents()
	want := []string{"p50", "p99", "success_rate"}
	if !slices.Equal(got, want) {
		t.Fatalf("Idents() = %q, want %q", got, want)
	}
	got[0] = "mutated"
	if e.Idents()[0] != "p50" {
		t.Error("Idents() returned shared storage")
	}
}

func TestSyntaxError_Error(t *testing.T) {
	err := &verify.SyntaxError{Col: 7, Msg: "p99 is a latency; give a unit, e.g. 150ms"}
	want := "col 7: p99 is a latency; give a unit, e.g. 150ms"
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
