package verify_test

import (
	"testing"

	"github.com/resctl/resctl/verify"
)

func TestSelector_Matches(t *testing.T) {
	api500 := map[string]string{"job": "api", "code": "500"}
	tests := []struct {
		name     string
		sel      verify.Selector
		source   string
		metric   string
		labels   map[string]string
		want     bool
		matchers []verify.Matcher
	}{
		{name: "source and metric", source: "target", metric: "up", want: true},
		{name: "other source", source: "proxy", metric: "up", want: false},
		{name: "other metric", source: "target", metric: "down", want: false},
		{name: "equal", matchers: []verify.Matcher{{"job", "=", "api"}}, source: "target", metric: "up", labels: api500, want: true},
		{name: "equal fails", matchers: []verify.Matcher{{"job", "=", "worker"}}, source: "target", metric: "up", labels: api500, want: false},
		{name: "not equal", matchers: []verify.Matcher{{"job", "!=", "worker"}}, source: "target", metric: "up", labels: api500, want: true},
		{name: "regex", matchers: []verify.Matcher{{"code", "=~", "5.."}}, source: "target", metric: "up", labels: api500, want: true},
		{name: "regex is anchored", matchers: []verify.Matcher{{"code", "=~", "50"}}, source: "target", metric: "up", labels: api500, want: false},
		{name: "regex alternation is anchored", matchers: []verify.Matcher{{"code", "=~", "5|500"}}, source: "target", metric: "up", labels: api500, want: true},
		{name: "negative regex", matchers: []verify.Matcher{{"code", "!~", "2.."}}, source: "target", metric: "up", labels: api500, want: true},
		{name: "negative regex fails", matchers: []verify.Matcher{{"code", "!~", "5.*"}}, source: "target", metric: "up", labels: api500, want: false},
		{name: "missing label is empty", matchers: []verify.Matcher{{"zone", "=", ""}}, source: "target", metric: "up", labels: api500, want: true},
		{name: "missing label differs", matchers: []verify.Matcher{{"zone", "!=", ""}}, source: "target", metric: "up", labels: api500, want: false},
		{name: "all must hold", matchers: []verify.Matcher{{"job", "=", "api"}, {"code", "=", "200"}}, source: "target", metric: "up", labels: api500, want: false},
		{name: "invalid regex matches nothing", matchers: []verify.Matcher{{"code", "=~", "("}}, source: "target", metric: "up", labels: api500, want: false},
		{name: "invalid negative regex matches nothing", matchers: []verify.Matcher{{"code", "!~", "("}}, source: "target", metric: "up", labels: api500, want: false},
		{name: "unknown operator matches nothing", matchers: []verify.Matcher{{"code", "==", "500"}}, source: "target", metric: "up", labels: api500, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel := verify.Selector{Source: "target", Metric: "up", Matchers: tt.matchers}
			if got := sel.Matches(tt.source, tt.metric, tt.labels); got != tt.want {
				t.Errorf("%v.Matches(%q, %q, %v) = %v, want %v", sel, tt.source, tt.metric, tt.labels, got, tt.want)
			}
		})
	}
}

func TestSelector_String(t *testing.T) {
	tests := []struct {
		name string
		sel  verify.Selector
		want string
	}{
		{"bare", verify.Selector{Source: "target", Metric: "go_goroutines"}, "target:go_goroutines"},
		{"colons in the metric", verify.Selector{Source: "db", Metric: "pg:stat_activity_count"}, "db:pg:stat_activity_count"},
		{"one matcher", verify.Selector{Source: "target", Metric: "go_goroutines", Matchers: []verify.Matcher{{"job", "=", "x"}}}, `target:go_goroutines{job="x"}`},
		{
			"every operator, in order",
			verify.Selector{Source: "proxy", Metric: "m", Matchers: []verify.Matcher{{"b", "!=", "1"}, {"a", "=~", "2.*"}, {"c", "!~", "3"}}},
			`proxy:m{b!="1", a=~"2.*", c!~"3"}`,
		},
		{"escapes", verify.Selector{Source: "s", Metric: "m", Matchers: []verify.Matcher{{"l", "=", `a"b\c`}}}, `s:m{l="a\"b\\c"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.sel.String()
			if got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
			e, err := verify.Parse(got + " == " + got)
			if err != nil {
				t.Fatalf("Parse(String()): %v", err)
			}
			if back := e.Selectors()[0].String(); back != got {
				t.Errorf("parsed back as %q", back)
			}
		})
	}
}

func TestMetricKind(t *testing.T) {
	tests := []struct {
		metric string
		want   verify.Kind
	}{
		{"http_request_duration_seconds", verify.KindDuration},
		{"go_memstats_heap_inuse_bytes", verify.KindBytes},
		{"cache_hit_ratio", verify.KindRatio},
		{"http_requests_total", verify.KindCount},
		{"http_request_duration_seconds_count", verify.KindCount},
		{"go_goroutines", verify.KindPlain},
		{"http_request_duration_seconds_sum", verify.KindPlain},
		{"seconds", verify.KindPlain},
	}
	for _, tt := range tests {
		if got := verify.MetricKind(tt.metric); got != tt.want {
			t.Errorf("MetricKind(%q) = %v, want %v", tt.metric, got, tt.want)
		}
	}
}
