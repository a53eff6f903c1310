package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestWriteJSON_RichGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, richFixture()); err != nil {
		t.Fatal(err)
	}
	golden(t, "rich.golden.json", b.Bytes())
}

func TestWriteJUnit_Golden(t *testing.T) {
	tests := []struct {
		name, golden string
		report       *Report
	}{
		{"simple", "junit.golden.xml", fixture()},
		{"rich", "rich.junit.golden.xml", richFixture()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteJUnit(&b, tt.report); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.golden, b.Bytes())
		})
	}
}

func TestWriteMarkdown_Golden(t *testing.T) {
	tests := []struct {
		name, golden string
		report       *Report
	}{
		{"simple", "summary.golden.md", fixture()},
		{"rich", "rich.summary.golden.md", richFixture()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteMarkdown(&b, tt.report); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.golden, b.Bytes())
		})
	}
}

func TestWriteMarkdown_Verdicts(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Report)
		want   []string
	}{
		{"passed", func(r *Report) { r.Passed = true }, []string{"## ✅ resctl · golden: PASSED"}},
		{"failed", func(r *Report) {}, []string{"## ❌ resctl · golden: FAILED", "### SLAs: 1 of 2 passed"}},
		{"error", func(r *Report) { r.Error = "target unreachable" }, []string{"ERROR", "> **Error:** target unreachable"}},
		{"interrupted", func(r *Report) { r.Interrupted = true }, []string{"INTERRUPTED", "was interrupted"}},
		{"generator behind", func(r *Report) { r.Run.Sent, r.Run.GeneratorBehind = 900, true }, []string{"sent 900 of 1000"}},
		{"no slas", func(r *Report) { r.SLAs = nil }, []string{"### Phases"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fixture()
			tt.change(r)
			var b bytes.Buffer
			if err := WriteMarkdown(&b, r); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("markdown lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}

func TestMarkdown_Escaping(t *testing.T) {
	tests := []struct {
		name, in, text, code string
	}{
		{"pipe", "a | b", `a \| b`, "`a \\| b`"},
		{"html", "<script>", "&lt;script>", "`<script>`"},
		{"newline", "a\nb", "a b", "`a b`"},
		{"backtick", "say `hi`", "say \\`hi\\`", "`` say `hi` ``"},
		{"emphasis and links", "*x* [y](z)", `\*x\* \[y\](z)`, "`*x* [y](z)`"},
		{"snake case stays", "success_rate", "success_rate", "`success_rate`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mdText(tt.in); got != tt.text {
				t.Errorf("mdText(%q) = %q, want %q", tt.in, got, tt.text)
			}
			if got := mdCode(tt.in); got != tt.code {
				t.Errorf("mdCode(%q) = %q, want %q", tt.in, got, tt.code)
			}
		})
	}
}

func TestWriteJUnit_Cases(t *testing.T) {
	tests := []struct {
		name                 string
		change               func(*Report)
		tests, fails, errors int
		want                 []string
	}{
		{"failed sla", func(r *Report) {}, 2, 1, 0,
			[]string{`message="observed success_rate=70%; expected success_rate &gt;= 99% during fault"`, `type="SLAFailed"`}},
		{"all passed", func(r *Report) { r.Passed = true; r.SLAs[1].Passed = true }, 2, 0, 0, nil},
		{"run error adds a case", func(r *Report) { r.Error = "target unreachable" }, 3, 1, 1,
			[]string{`<testcase name="run"`, `message="target unreachable" type="RunError"`}},
		{"interrupted adds a case", func(r *Report) { r.Interrupted = true }, 3, 1, 1, []string{`type="RunInterrupted"`}},
		{"undecided sla is an error", func(r *Report) { r.SLAs[1].Error = "no data" }, 2, 0, 1,
			[]string{`<error message="could not decide: no data" type="SLAUndecided">`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fixture()
			tt.change(r)
			var b bytes.Buffer
			if err := WriteJUnit(&b, r); err != nil {
				t.Fatal(err)
			}
			doc := validateJUnit(t, b.Bytes())
			s := doc.children[0]
			if s.attrs["tests"] != itoa(tt.tests) || s.attrs["failures"] != itoa(tt.fails) || s.attrs["errors"] != itoa(tt.errors) {
				t.Errorf("suite counts tests=%s failures=%s errors=%s, want %d %d %d", s.attrs["tests"], s.attrs["failures"], s.attrs["errors"], tt.tests, tt.fails, tt.errors)
			}
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("junit lacks %s:\n%s", w, b.String())
				}
			}
		})
	}
}

// TestJUnit_ValidShape checks every fixture's JUnit output against the
// shape of the common JUnit schema (Jenkins' junit-10.xsd).
func TestJUnit_ValidShape(t *testing.T) {
	tests := []struct {
		name   string
		report *Report
	}{
		{"simple", fixture()},
		{"rich", richFixture()},
		{"empty", &Report{Schema: Schema, Scenario: "empty", Error: "boom"}},
		{"control characters", &Report{Schema: Schema, Scenario: "a\x00b", Error: "\x1b[31mred\x1b[0m",
			SLAs: []SLA{{Name: "x\x07", Observed: "]]> and \x01", Expect: "y"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteJUnit(&b, tt.report); err != nil {
				t.Fatal(err)
			}
			validateJUnit(t, b.Bytes())
		})
	}
}

// TestRender_EveryFormatTakesEveryReport renders degenerate reports in
// every format: a report is input from disk, so no shape of it may panic or
// fail to render.
func TestRender_EveryFormatTakesEveryReport(t *testing.T) {
	tests := []struct {
		name   string
		report *Report
	}{
		{"zero", &Report{}},
		{"error before any load", &Report{Schema: Schema, Scenario: "x", Error: "target unreachable", Phases: []Phase{{Name: "only", EndS: 0}}}},
		{"guard event without from", &Report{Schema: Schema, DurationS: 3, Events: []Event{{AtS: 1, Source: "guard", Kind: "transition", Name: "b", To: "open"}}}},
		{"fault never off", &Report{Schema: Schema, DurationS: 10, Faults: []Fault{{ID: "f", StartS: 2}}}},
		{"panel with empty series", &Report{Schema: Schema, DurationS: 10, Panels: []Panel{{Title: "p", Series: []MetricSeries{{Name: "m"}}}}}},
		{"negative and huge values", &Report{Schema: Schema, DurationS: 5, Series: []Second{{T: 0, Requests: 1, P99Ms: 1e12}, {T: 7, Requests: 1, P50Ms: -3}},
			Metrics: []MetricSeries{{Source: "target", Name: "go_goroutines", Points: [][2]float64{{-1, -5}, {2, 1e300}}}}}},
		{"timing sla never happened", &Report{Schema: Schema, SLAs: []SLA{{Name: "t", Kind: "time_to", Observed: "never"}}}},
		{"config that is not json", &Report{Schema: Schema, Faults: []Fault{{ID: "f", Config: map[string]any{"x": "y"}}}}},
	}
	writers := map[string]func(*bytes.Buffer, *Report) error{
		"json":     func(b *bytes.Buffer, r *Report) error { return WriteJSON(b, r) },
		"html":     func(b *bytes.Buffer, r *Report) error { return WriteHTML(b, r) },
		"junit":    func(b *bytes.Buffer, r *Report) error { return WriteJUnit(b, r) },
		"markdown": func(b *bytes.Buffer, r *Report) error { return WriteMarkdown(b, r) },
	}
	for _, tt := range tests {
		for name, write := range writers {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				var b bytes.Buffer
				if err := write(&b, tt.report); err != nil {
					t.Fatalf("render: %v", err)
				}
				if b.Len() == 0 {
					t.Error("empty output")
				}
				if name == "json" && !json.Valid(b.Bytes()) {
					t.Error("invalid JSON")
				}
			})
		}
	}
}
