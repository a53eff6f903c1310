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

	// Recovery primitives.
	{"time to detect", "time_to(error_rate > 5%) < 10s", []string{"error_rate"}},
	{"time to detect from a phase", "time_to(error_rate > 5%, from: fault) < 10s", []string{"error_rate"}},
	{"time to a state", `time_to(breaker("payments") == open) < 2s`, nil},
	{"recovery with hold", "recovery_time(error_rate < 1% and p99 < 200ms, hold: 5s) < 30s", []string{"error_rate", "p99"}},
	{"recovery from a quoted phase", `recovery_time(success_rate >= 99%, hold: 5s, from: "fault-1") <= 1m`, []string{"success_rate"}},
	{"named arguments in any order", "recovery_time(success_rate >= 99%, from: fault, hold: 500ms) < 1m", []string{"success_rate"}},
	{"hold omitted", "recovery_time(p99 < 1s) < 1m", []string{"p99"}},
	{"named arguments with =", "recovery_time(success_rate >= 99%, hold=5s, from = fault) < 10s", []string{"success_rate"}},
	{"= argument beside ==", "time_to(p99 == 1s, from=fault) < 1m", []string{"p99"}},
	{"named argument without a space", "time_to(target:up == 0, from:baseline) < 1s", nil},
	{"trailing comma in a call", "time_to(p99 > 1s,) < 1s", []string{"p99"}},
	{"timing arithmetic", "time_to(p99 > 1s) + recovery_time(p99 < 1s) < 1m", []string{"p99"}},

	// Selectors.
	{"selector", "target:go_goroutines < 1000", nil},
	{"selector with unit suffix", "target:go_memstats_heap_inuse_bytes < 150MiB", nil},
	{"every matcher", `proxy:http_requests_total{code=~"5..", job!="x", a="b", c!~"d"} < 10`, nil},
	{"first colon separates the source", `db:pg:stat_activity_count{state="active"} < 50`, nil},
	{"escapes", `target:up{job="a\"b\\c"} == 1`, nil},
	{"empty matchers", "target:up{} == 1", nil},
	{"space before matchers", `target:up {job="x"} == 1`, nil},
	{"trailing comma in matchers", `target:up{job="x",} == 1`, nil},
	{"keyword as a label name", `target:up{over="x"} == 1`, nil},
	{"plain divided", "target:go_goroutines / 2 < 10", nil},
	{"plain scales a duration", "target:gc_seconds * target:go_goroutines < 1s", nil},

	// Functions.
	{"rate", `rate(target:http_requests_total{code=~"5.."}) < 1/s`, nil},
	{"rate with a bare number", "rate(target:x_total) < 1", nil},
	{"increase", "increase(target:http_requests_total) > 0", nil},
	{"aggregations", "avg(target:go_goroutines) < 100 and min(target:go_goroutines) > 0 and max(target:go_goroutines) < 200 and last(target:go_goroutines) < 150 and first(target:go_goroutines) > 1", nil},
	{"max series and max call", "max < 1s and max(target:go_goroutines) < 100", []string{"max"}},
	{"call with a space", "max (target:go_goroutines) < 100", nil},
	{"histogram quantile", "histogram_quantile(0.99, target:http_request_duration_seconds) < 250ms", nil},
	{"histogram quantile in percent of buckets", `histogram_quantile(99%, target:http_request_duration_seconds_bucket{job="api"}) < 250ms`, nil},

	// Windows.
	{"during", "p99 during baseline < 100ms", []string{"p99"}},
	{"during a quoted phase", `p99 during "fault-1" < 1s`, []string{"p99"}},
	{"during the run", "p99 during run < 1s", []string{"p99"}},
	{"over", "p99 over 30s < 1s", []string{"p99"}},
	{"window inside a call", "avg(target:go_goroutines during baseline) < 100", nil},
	{"window on a call", "avg(target:go_goroutines) during baseline < 100", nil},
	{"over inside rate", "rate(target:x_total over 30s) < 5", nil},
	{"over on a selector", "target:go_goroutines over 10s < 100", nil},
	{"window binds tighter than minus", "-p99 during baseline > -1s", []string{"p99"}},
	{"window binds tighter than times", "p99 during baseline * 1.1 > p99", []string{"p99"}},
	{"against the baseline", "last(target:go_goroutines) <= 1.1 * avg(target:go_goroutines during baseline)", nil},
	{"baseline inside time_to", "time_to(last(target:go_goroutines) > 1.5 * avg(target:go_goroutines during baseline)) < 5s", nil},

	// States.
	{"breaker string literal", `breaker("payments") == "half_open"`, nil},
	{"breaker not equal", `breaker("payments") != closed`, nil},
	{"state literal first", `open == breaker("payments")`, nil},
	{"fault", `fault("latency-1") == on`, nil},
	{"generic state", `state("pool", "db") == "draining"`, nil},
	{"generic state word", `state("pool","db") == anything_goes`, nil},
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
	{"single equals", "p99 = 1s", 5, `unexpected "=", expected an operator or end of expression (did you mean "=="?)`},
	{"single ampersand", "p99 < 1s & p50 < 1s", 10, `unexpected character "&"`},
	{"single pipe", "p99 < 1s | p50 < 1s", 10, `unexpected character "|"`},
	{"detached percent", "99 % > error_rate", 4, `unexpected character "%"`},
	{"stray dot", "p99 < 1.s", 8, `unexpected character "."`},
	{"unexpected end", "p99 <", 6, `unexpected end of expression, expected a number, series, selector, function or "("`},
	{"unexpected end after and", "p99 < 1s and ", 14, "unexpected end of expression"},
	{"unexpected end after minus", "p99 < -", 8, "unexpected end of expression"},
	{"unexpected operator", "p99 < < 1s", 7, `unexpected "<", expected a number, series, selector, function or "("`},
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

	// Calls.
	{"unknown function with suggestion", "rat(target:x_total) > 1", 1, `unknown function "rat" (did you mean "rate"?)`},
	{"load series called", "p99(target:x) > 1", 1, "p99 is a load series, not a function"},
	{"unknown function", "foo(target:x) > 1", 1, `unknown function "foo"`},
	{"missing argument", "rate() > 1", 6, "rate needs 1 argument: rate(target:http_requests_total)"},
	{"extra argument", "rate(target:a_total, target:b_total) > 1", 22, "rate takes 1 argument"},
	{"load series aggregated", "rate(p99) > 1", 6, "rate takes a selector, e.g. rate(target:http_requests_total); p99 is a load series"},
	{"number aggregated", "avg(2) > 1", 5, "avg takes a selector"},
	{"named argument where none", "rate(target:x_total, from: fault) > 1", 22, "rate takes no named arguments"},
	{"misspelt named argument", "time_to(p99 > 1s, frm: fault) < 1s", 19, `unknown argument "frm" for time_to (did you mean "from"?)`},
	{"misspelt hold", "recovery_time(p99 < 1s, holdd: 5s) < 1s", 25, `(did you mean "hold"?)`},
	{"unknown named argument", "recovery_time(p99 < 1s, limit: 5s) < 1s", 25, `unknown argument "limit" for recovery_time; it takes hold and from`},
	{"hold on time_to", "time_to(p99 > 1s, hold: 5s) < 1s", 19, `unknown argument "hold" for time_to; it takes from`},
	{"hold without unit", "recovery_time(p99 < 1s, hold: 5) < 1s", 31, "hold must be a duration, e.g. hold: 5s"},
	{"hold in percent", "recovery_time(p99 < 1s, hold: 5%) < 1s", 31, "hold must be a duration"},
	{"hold as a series", "recovery_time(p99 < 1s, hold: p99) < 1s", 31, "hold must be a duration"},
	{"hold twice", "recovery_time(p99 < 1s, hold: 5s, hold: 6s) < 1s", 35, "hold is given twice"},
	{"from a duration", "time_to(p99 > 1s, from: 5s) < 1s", 25, "expected a phase name after from:, e.g. from: fault"},
	{"from a hyphenated phase", "time_to(p99 > 1s, from: fault-1) < 1s", 25, `quote a phase name that is not an identifier: from: "fault-1"`},
	{"positional after named", "time_to(from: fault, p99 > 1s) < 1s", 22, "positional arguments come before named ones"},
	{"timing of a number", "time_to(p99) < 1s", 9, "time_to needs a condition: time_to(error_rate > 5%, from: fault)"},
	{"timing without unit", "time_to(p99 > 1s) < 1", 21, "time_to(p99 > 1s) is a duration; give a unit, e.g. 1s"},
	{"nested time_to", "time_to(time_to(p99 > 1s) < 1s) < 1s", 9, "time_to cannot be used inside time_to(…)"},
	{"nested in recovery", "recovery_time(time_to(p99 > 1s) < 1s) < 1s", 15, "time_to cannot be used inside recovery_time(…)"},
	{"unclosed call", "time_to(p99 > 1s", 8, "unclosed parenthesis"},
	{"call cut short", "rate(", 6, "unexpected end of expression"},
	{"missing comma", "time_to(p99 > 1s from: fault) < 1s", 18, `unexpected "from", expected an operator or "," or ")"`},

	// Windows.
	{"during on time_to", "time_to(p99 > 1s) during fault < 1s", 19, "time_to counts from a phase's edge: use from:"},
	{"during on a state", `breaker("x") during fault == open`, 14, `breaker("x") is read at an instant; "during" does not apply to it`},
	{"during on arithmetic", "(p99 + p50) during fault < 1s", 13, `"during" applies to a load series, a selector or a function such as avg(…), not to (p99 + p50)`},
	{"two windows", "p99 during fault during baseline < 1s", 18, "p99 during fault already has a window"},
	{"two windows across a call", "avg(target:x during a) during b > 1", 24, "avg(…) already has a window inside its parentheses"},
	{"two windows inside a call", "avg(target:x over 30s during a) > 1", 23, "target:x over 30s already has a window"},
	{"over without unit", "p99 over 30 < 1s", 10, "over needs a duration, e.g. over 30s"},
	{"over zero", "p99 over 0s < 1s", 10, "over needs a duration above zero"},
	{"over out of range", "p99 over 1000000000h < 1s", 10, `duration "1000000000h" is out of range`},
	{"during without phase", "p99 during < 1s", 12, "expected a phase name after during, e.g. during baseline"},
	{"during a hyphenated phase", "p99 during fault-injection < 1s", 12, `quote a phase name that is not an identifier: during "fault-injection"`},
	{"during an empty phase", `p99 during "" < 1s`, 12, "empty phase name after during"},
	{"upper-case during", "p99 DURING fault < 1s", 5, `keywords are lower case: write "during"`},
	{"misspelt during", "p99 durng fault < 1s", 5, `(did you mean "during"?)`},
	{"over as an operand", "over(target:x) > 1", 1, `unexpected "over", expected a number`},

	// Selectors.
	{"space after the colon", "target: go_goroutines > 1", 8, `expected a metric name directly after "target:"`},
	{"space before the colon", "target :go_goroutines > 1", 1, "a selector has no spaces around its colon"},
	{"matchers not closed before operator", `target:go_goroutines{job="x" > 1`, 30, `unexpected ">", expected "," or "}"`},
	{"matchers not closed", `target:up{job="x"`, 10, "unclosed {"},
	{"unquoted label value", "target:up{job=x} == 1", 15, `label values are quoted: job="x"`},
	{"double equals in matcher", `target:up{job=="x"} == 1`, 14, `labels are matched with "=", not "=="`},
	{"bad matcher operator", `target:up{job<"x"} == 1`, 14, `expected =, !=, =~ or !~ after label "job"`},
	{"quoted label name", `target:up{"job"="x"} == 1`, 11, "expected a label name"},
	{"non-ASCII label name", `target:up{jöb="x"} == 1`, 11, "expected a label name"},
	{"bad regular expression", `target:up{job=~"(x"} == 1`, 16, `invalid regular expression: missing closing ): "(x"`},
	{"unknown escape", `target:up{job="x\n"} == 1`, 17, "unknown escape in string"},
	{"unterminated string", `target:up{job="x} == 1`, 15, "unterminated string"},
	{"matchers twice", `target:up{job="x"}{a="b"} == 1`, 19, `unexpected "{"`},
	{"regex match outside a selector", `target:up =~ "1"`, 11, `unexpected "=~": regular expressions match labels inside a selector's {…}`},

	// Kinds of scraped values.
	{"size against a duration", "target:go_memstats_heap_inuse_bytes < 150ms", 39, "cannot compare target:go_memstats_heap_inuse_bytes (a size) with 150ms (a duration)"},
	{"size without unit", "target:go_memstats_heap_inuse_bytes < 150", 39, "target:go_memstats_heap_inuse_bytes is a size; give a unit, e.g. 150MiB"},
	{"seconds without unit", "target:gc_pause_seconds < 5", 27, "target:gc_pause_seconds is a duration; give a unit, e.g. 5s"},
	{"scraped ratio missing percent", "target:cache_hit_ratio > 95", 26, "target:cache_hit_ratio is a ratio; write 95% or 0.95"},
	{"aggregated ratio missing percent", "avg(target:cache_hit_ratio) > 95", 31, "avg(target:cache_hit_ratio) is a ratio; write 95% or 0.95"},
	{"plain against a duration", "target:go_goroutines < 1s", 24, "cannot compare target:go_goroutines (a plain number) with 1s (a duration)"},
	{"rate against a duration", "rate(target:x_total) < 1ms", 24, "cannot compare rate(target:x_total) (a rate) with 1ms (a duration)"},
	{"quantile above one", "histogram_quantile(1.5, target:x_seconds) < 1s", 20, "quantile 1.5 is out of range; use 0 to 1 or 0% to 100%"},
	{"quantile above 100%", "histogram_quantile(150%, target:x_seconds) < 1s", 20, "quantile 150% is out of range"},
	{"quantile a series", "histogram_quantile(p99, target:x_seconds) < 1s", 20, "the quantile is a number from 0 to 1 or a percentage"},
	{"quantile a duration", "histogram_quantile(0.5ms, target:x_seconds) < 1s", 20, "the quantile is a number from 0 to 1 or a percentage"},
	{"quantile le matcher", `histogram_quantile(0.9, target:x_seconds{le="1"}) < 1s`, 42, "histogram_quantile reads every bucket; remove the le matcher"},
	{"quantile missing histogram", "histogram_quantile(0.9) < 1s", 23, "histogram_quantile needs 2 arguments"},
	{"quantile without unit", "histogram_quantile(0.9, target:x_seconds) < 1", 45, "is a duration; give a unit, e.g. 1s"},

	// States.
	{"misspelt breaker state", `breaker("payments") == opn`, 24, `unknown breaker state "opn" (did you mean "open"?)`},
	{"unknown breaker state", `breaker("payments") == "shut"`, 24, `unknown breaker state "shut"; breaker states are open, half_open, closed`},
	{"unknown fault state", `fault("f") == yes`, 15, `unknown fault state "yes"; fault states are on, off`},
	{"state ordered", `breaker("payments") < "open"`, 21, `a state is compared with == or !=, not "<"`},
	{"state against a number", `breaker("payments") == 1`, 24, `breaker("payments") is a state; compare it with a state name, e.g. breaker("payments") == open`},
	{"state against a state", `breaker("a") == breaker("b")`, 17, `compare breaker("a") with a state name, e.g. breaker("a") == open, not with another state`},
	{"state alone", `breaker("a")`, 1, "expression must be a condition"},
	{"state in arithmetic", `breaker("a") + 1 > 2`, 1, `breaker("a") is a state; compare it with == or != and a state name, e.g. breaker("a") == open`},
	{"unquoted breaker name", "breaker(payments) == open", 9, `names are quoted: breaker("payments")`},
	{"empty breaker name", `breaker("") == open`, 9, "empty name in breaker(…)"},
	{"number as a name", "breaker(1) == open", 9, "names are quoted"},
	{"state missing its name", `state("pool") == x`, 13, `state needs 2 arguments: state("pool", "db")`},
	{"word beside a series", "p99 == open", 8, `unknown series "open"`},
	{"string beside a series", `"open" == p99`, 1, "a quoted string names a state"},
	{"string as a condition", `p99 < 1s and "x"`, 14, `expected a condition on each side of "and"`},
	{"empty state literal", `state("pool", "db") == ""`, 24, "empty state name"},
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
