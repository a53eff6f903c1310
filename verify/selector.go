package verify

import (
	"regexp"
	"strings"
	"sync"
)

// Selector picks scraped series, as written in an SLA:
// source:metric{label="v", …}. It is what an expression asks [RunEnv.Series]
// for, and what [Expr.Selectors] reports so a runner knows what to scrape.
type Selector struct {
	Source   string    // the scrape source: target, proxy, self, db, …
	Metric   string    // the metric name, colons included (the first colon of the SLA text separates the source)
	Matchers []Matcher // all must hold; none matches every series of the metric
}

// Matcher is one label condition of a [Selector], with PromQL semantics: a
// label a series lacks has the value "".
type Matcher struct {
	Name  string
	Op    string // "=", "!=", "=~" or "!~"
	Value string // for =~ and !~, a regular expression matched against the whole value
}

// Matches reports whether a series scraped from source, named metric, with
// the given labels is selected by s. Regular expressions are anchored at
// both ends, as in PromQL; one that does not compile (Parse never produces
// such a Matcher) matches nothing, whether the operator is =~ or !~.
func (s Selector) Matches(source, metric string, labels map[string]string) bool {
	if source != s.Source || metric != s.Metric {
		return false
	}
	for _, m := range s.Matchers {
		if !m.matches(labels[m.Name]) {
			return false
		}
	}
	return true
}

func (m Matcher) matches(v string) bool {
	switch m.Op {
	case "=":
		return v == m.Value
	case "!=":
		return v != m.Value
	case "=~", "!~":
		re := anchored(m.Value)
		if re == nil {
			return false
		}
		return re.MatchString(v) == (m.Op == "=~")
	}
	return false
}

// String returns the selector in the SLA syntax, with matchers in their
// given order: target:http_requests_total{code=~"5..", job="api"}. Parse
// reads it back as the same selector.
func (s Selector) String() string {
	var b strings.Builder
	b.WriteString(s.Source)
	b.WriteByte(':')
	b.WriteString(s.Metric)
	if len(s.Matchers) == 0 {
		return b.String()
	}
	b.WriteByte('{')
	for i, m := range s.Matchers {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(m.Name)
		b.WriteString(m.Op)
		b.WriteString(quote(m.Value))
	}
	b.WriteByte('}')
	return b.String()
}

// clone returns a copy of s that shares no storage with it.
func (s Selector) clone() Selector {
	s.Matchers = append([]Matcher(nil), s.Matchers...)
	return s
}

// quote writes v as a string literal of the language: only " and \ are
// escaped, which is all the lexer understands.
func quote(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// MetricKind infers the kind of a scraped metric from its name's suffix,
// following Prometheus naming conventions: _seconds is a duration, _bytes a
// size, _ratio a ratio, _total and _count a count; any other name is a
// plain number. Reports use it to format scraped values.
func MetricKind(metric string) Kind {
	switch {
	case strings.HasSuffix(metric, "_seconds"):
		return KindDuration
	case strings.HasSuffix(metric, "_bytes"):
		return KindBytes
	case strings.HasSuffix(metric, "_ratio"):
		return KindRatio
	case strings.HasSuffix(metric, "_total"), strings.HasSuffix(metric, "_count"):
		return KindCount
	}
	return KindPlain
}

// regexps caches anchored regular expressions by pattern: Env
// implementations call Matches for every series on every lookup.
var regexps sync.Map // pattern → *regexp.Regexp, or nil if it does not compile

// anchored returns pattern compiled to match whole strings, or nil.
func anchored(pattern string) *regexp.Regexp {
	if re, ok := regexps.Load(pattern); ok {
		return re.(*regexp.Regexp)
	}
	re, err := regexp.Compile("^(?:" + pattern + ")$")
	if err != nil {
		re = nil
	}
	regexps.Store(pattern, re)
	return re
}

// isMetricStart and isMetricPart follow Prometheus' metric name rule
// [a-zA-Z_:][a-zA-Z0-9_:]*.
func isMetricStart(r rune) bool {
	return r == '_' || r == ':' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
}

func isMetricPart(r rune) bool { return isMetricStart(r) || isDigit(r) }

// isLabelName follows Prometheus' label name rule [a-zA-Z_][a-zA-Z0-9_]*.
func isLabelName(s string) bool {
	for i, r := range s {
		if r == ':' || !isMetricPart(r) || (i == 0 && isDigit(r)) {
			return false
		}
	}
	return s != ""
}
