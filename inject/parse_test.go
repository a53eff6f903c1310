package inject_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/resctl/resctl/inject"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		name, kind, params string
		check              func(t *testing.T, s inject.Spec)
		wantErr            []string
	}{
		{name: "json latency", kind: "latency", params: `{"delay": "200ms", "jitter": "50ms", "percent": 30, "path": "/api"}`,
			check: func(t *testing.T, s inject.Spec) {
				l := s.(*inject.LatencySpec)
				if l.Delay != 200*time.Millisecond || l.Jitter != 50*time.Millisecond || l.Percent != 30 || l.Path != "/api" {
					t.Errorf("spec = %+v", l)
				}
			}},
		{name: "yaml abort with defaults", kind: "abort", params: "percent: 10%",
			check: func(t *testing.T, s inject.Spec) {
				if a := s.(*inject.AbortSpec); a.Status != 503 || a.Percent != 10 {
					t.Errorf("spec = %+v", a)
				}
			}},
		{name: "no params", kind: "abort", check: func(t *testing.T, s inject.Spec) {
			if a := s.(*inject.AbortSpec); a.Percent != 100 {
				t.Errorf("spec = %+v", a)
			}
		}},
		{name: "unknown kind", kind: "latncy", wantErr: []string{`did you mean "latency"`}},
		{name: "unknown key", kind: "latency", params: `{"delay": "1s", "dealy": "2s"}`, wantErr: []string{`dealy: unknown key "dealy"`}},
		{name: "bad values all reported", kind: "latency", params: `{"delay": "-1s", "percent": 150}`, wantErr: []string{"percent: percentage 150", "delay: must be above zero"}},
		{name: "missing delay", kind: "latency", params: `{}`, wantErr: []string{"delay: must be above zero"}},
		{name: "not json", kind: "abort", params: `{"status": `, wantErr: []string{"not valid JSON or YAML"}},
		{name: "over the node limit", kind: "latency", params: `{"delay": "1s", "x": [` + strings.Repeat("0,", 100_000) + `0]}`, wantErr: []string{"more than the limit of 100000 nodes"}},
		{name: "alias inside its own value", kind: "latency", params: "delay: 1s\nx: &a [*a]", wantErr: []string{"alias *a is inside the value it names"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := inject.ParseSpec(tt.kind, []byte(tt.params))
			if len(tt.wantErr) > 0 {
				var se *inject.SpecError
				if !errors.As(err, &se) {
					t.Fatalf("err = %v, want *SpecError", err)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("err = %q, want it to mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}
