package scenario

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Every starter scenario parses as it is, with the schema comment, a
// warm-up no SLA reads, a fault, SLAs and the HTML report.
func TestStarter(t *testing.T) {
	tests := []struct {
		name string
		opts StarterOptions
		want []string
	}{
		{"demo", StarterOptions{Demo: true}, []string{"builtin: demo", "path: /api/orders"}},
		{"url", StarterOptions{URL: "http://127.0.0.1:9000", Path: "/health check"}, []string{"url: http://127.0.0.1:9000", `path: "/health check"`}},
		{"command", StarterOptions{Name: "orders", URL: "http://127.0.0.1:18080", Command: []string{"./orders", "--listen", "127.0.0.1:18080"}, Phase: 4 * time.Second},
			[]string{`command: [./orders, --listen, 127.0.0.1:18080]`, "url: http://127.0.0.1:18080 ", "hold=1s) < 2s", "name: orders"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Starter(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			text := string(b)
			if !strings.HasPrefix(text, "# yaml-language-server: $schema="+SchemaURL+"\n") {
				t.Errorf("no schema comment on the first line:\n%s", text)
			}
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("no %q in:\n%s", w, text)
				}
			}
			s, err := Parse("starter.yaml", b)
			if err != nil {
				t.Fatalf("the starter does not parse: %v\n%s", err, text)
			}
			if s.Phases[0].Name != "warmup" || len(s.Phases[0].Faults) > 0 {
				t.Errorf("first phase %+v, want a warm-up without faults", s.Phases[0])
			}
			for _, sla := range s.SLAs {
				if sla.During == "warmup" {
					t.Errorf("SLA %q reads the warm-up", sla.Name)
				}
			}
			if len(s.Phases[2].Faults) != 1 || len(s.SLAs) < 4 || !s.RequireFaultsFired {
				t.Errorf("want a fault, SLAs and require_faults_fired; got %d faults, %d SLAs", len(s.Phases[2].Faults), len(s.SLAs))
			}
			if len(s.Output.Formats) != 1 || s.Output.Formats[0] != "html" {
				t.Errorf("output formats %v, want [html]", s.Output.Formats)
			}
		})
	}
}

func TestStarter_BadOptions(t *testing.T) {
	for name, o := range map[string]StarterOptions{
		"no target":           {},
		"command without URL": {Command: []string{"./svc"}},
		"demo and URL":        {Demo: true, URL: "http://127.0.0.1:1"},
		"phase too short":     {Demo: true, Phase: time.Second},
	} {
		if _, err := Starter(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// An option that names a variable is written as given, set or not: the
// runs it is for set it.
func TestStarter_OptionsWithVariables(t *testing.T) {
	b, err := Starter(StarterOptions{URL: "${RESCTL_TEST_UNSET_URL}", Path: "/api"})
	if err != nil || !strings.Contains(string(b), `"${RESCTL_TEST_UNSET_URL}"`) {
		t.Errorf("Starter with a URL from a variable: %v\n%s", err, b)
	}
}

// Options that make a scenario validate would refuse are refused by
// Starter, each problem named by its option, once.
func TestStarter_OptionsThatDoNotValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		o    StarterOptions
		want []string
	}{
		"not an http URL": {StarterOptions{URL: "ftp://x"}, []string{`url: "ftp://x" is not an http`}},
		"port, path and phase": {StarterOptions{URL: "http://127.0.0.1:99999", Path: "no-slash", Phase: 200 * time.Hour},
			[]string{"url: port 99999", "path: must start with /", "phase: duration 200h is over the maximum"}},
		"rate": {StarterOptions{Demo: true, Rate: 5_000_000}, []string{"rate: 5000000/s is more than resctl can send"}},
	} {
		_, err := Starter(tc.o)
		if !errors.Is(err, ErrStarterInvalid) {
			t.Errorf("%s: error %v, want ErrStarterInvalid", name, err)
			continue
		}
		for _, w := range tc.want {
			if n := strings.Count(err.Error(), w); n != 1 {
				t.Errorf("%s: %q appears %d times in %q, want once", name, w, n, err)
			}
		}
	}
}
