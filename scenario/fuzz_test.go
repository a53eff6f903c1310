package scenario_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/resctl/resctl/scenario"
)

func FuzzParse(f *testing.F) {
	var files []string
	for _, pattern := range []string{"testdata/*.yaml", "../testdata/scenarios/*.yaml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		f.Fatal("no scenario files to seed from")
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, tt := range badCases {
		f.Add([]byte(tt.src))
	}
	for _, seed := range limitSeeds() {
		f.Add([]byte(seed))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz.yaml"
		s, err := scenario.Parse(name, data)
		checkParse(t, name, s, err)
	})
}

// limitSeeds are documents that meet the limits of reading: aliases that
// expand far, an alias inside its own value, syntax errors late in a long
// file and on a long line.
func limitSeeds() []string {
	const valid = "name: t\ntarget: {builtin: demo}\nload: {rate: 5/s, requests: [{path: /}]}\nphases: [{name: a, duration: 1s}]\n"
	return []string{
		typedAliasBomb(),
		valid + "x: &a [1, *a]\n",
		valid + "load: &l {rate: 5/s, requests: [{path: /}]}\nproxy: {routes: [{match: {path: /}, guard: *l}]}\n",
		valid + strings.Repeat("description: "+strings.Repeat("x", 500)+"\n", 20) + "- x\n",
		valid + "description: '" + strings.Repeat("x", 2000) + "\n",
		valid + "phases: [{name: a, duration: 9999999h}]\nload: {rate: 9e99/s}\n",
	}
}

// FuzzParseWith reads documents within small limits, so that inputs meet
// them: a document is accepted only within them, and refused with a
// located problem otherwise.
func FuzzParseWith(f *testing.F) {
	for _, seed := range limitSeeds() {
		f.Add([]byte(seed), uint16(200), uint16(50))
		f.Add([]byte(seed), uint16(0), uint16(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, maxBytes, maxNodes uint16) {
		const name = "fuzz.yaml"
		lim := scenario.Limits{MaxBytes: int64(maxBytes), MaxNodes: int(maxNodes), MaxProblems: 3}
		s, err := scenario.ParseWith(context.Background(), name, data, lim)
		checkParse(t, name, s, err)
		if err == nil && maxBytes > 0 && len(data) > int(maxBytes) {
			t.Fatalf("accepted %d bytes over a limit of %d", len(data), maxBytes)
		}
		var ve *scenario.ValidationError
		if errors.As(err, &ve) && strings.Count(ve.Error(), "\n") > 3 {
			t.Fatalf("printed more than 3 problems and a count:\n%s", ve.Error())
		}
	})
}

// checkParse checks what Parse promises: a valid scenario, or a
// *ValidationError whose problems are placed in the file, in order.
func checkParse(t *testing.T, name string, s *scenario.Scenario, err error) {
	t.Helper()
	if err == nil {
		if s == nil {
			t.Fatal("Parse returned neither a scenario nor an error")
		}
		checkValid(t, s, name)
		return
	}
	if s != nil {
		t.Fatalf("Parse returned a scenario along with error %v", err)
	}
	var ve *scenario.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Parse error is %T (%v), want *scenario.ValidationError", err, err)
	}
	if ve.File != name {
		t.Errorf("File = %q, want %q", ve.File, name)
	}
	if len(ve.Problems) == 0 {
		t.Fatal("ValidationError without problems")
	}
	for i, p := range ve.Problems {
		if p.Line < 1 || p.Col < 1 {
			t.Errorf("problem %d at %d:%d, want line and column >= 1: %+v", i, p.Line, p.Col, p)
		}
		if p.Msg == "" {
			t.Errorf("problem %d has no message: %+v", i, p)
		}
		if i > 0 {
			q := ve.Problems[i-1]
			if p.Line < q.Line || p.Line == q.Line && p.Col < q.Col {
				t.Errorf("problems %d and %d out of order: %d:%d before %d:%d", i-1, i, q.Line, q.Col, p.Line, p.Col)
			}
		}
	}
	shown := ve.Max
	if shown <= 0 {
		shown = scenario.DefaultMaxProblems
	}
	if got := strings.Count(ve.Error(), "\n") + 1; got < min(len(ve.Problems), shown) {
		t.Errorf("Error() has %d lines for %d problems", got, len(ve.Problems))
	}
}

// checkValid checks what Parse promises of a scenario it accepts.
func checkValid(t *testing.T, s *scenario.Scenario, name string) {
	t.Helper()
	if s.File != name {
		t.Errorf("File = %q, want %q", s.File, name)
	}
	everyPhase := len(s.Phases) > 0
	for _, ph := range s.Phases {
		everyPhase = everyPhase && ph.Rate.IsSet()
	}
	if s.Load.Rate <= 0 && !everyPhase {
		t.Errorf("accepted rate %v with phases that have none of their own", s.Load.Rate)
	}
	if s.Load.Timeout <= 0 {
		t.Errorf("accepted timeout %v", s.Load.Timeout)
	}
	if (len(s.Load.Requests) == 0 && s.Load.GRPC == nil) || len(s.Phases) == 0 {
		t.Errorf("accepted %d requests and %d phases", len(s.Load.Requests), len(s.Phases))
	}
	for i, ph := range s.Phases {
		if ph.Duration <= 0 {
			t.Errorf("phases[%d]: accepted duration %v", i, ph.Duration)
		}
		for j, f := range ph.Faults {
			if f.Spec == nil && f.Runtime == nil && f.Network == nil && f.Process == nil {
				t.Errorf("phases[%d].faults[%d]: accepted without a kind", i, j)
			}
		}
	}
	for i, sla := range s.SLAs {
		if sla.Expr == nil || sla.Name == "" {
			t.Errorf("slas[%d]: accepted without a parsed expression or name: %+v", i, sla)
		}
	}
}
