package verify_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/resctl/resctl/verify"
)

// fullEnv has data for everything an expression can name: every load
// series, phase and state, and a counter sampled each second for every
// selector (with buckets for histograms).
type fullEnv struct{ *tableEnv }

func newFullEnv() fullEnv {
	return fullEnv{threePhases().failing(0.5, 13, 14)}
}

func (e fullEnv) Phase(name string) (verify.Window, bool) {
	if w, ok := e.phases[name]; ok {
		return w, true
	}
	return verify.Window{From: sec(5), To: sec(15)}, true
}

func (e fullEnv) Load(name string, w verify.Window) (float64, bool) {
	if v, ok := e.tableEnv.Load(name, w); ok {
		return v, true
	}
	return 0.25, true
}

func (e fullEnv) Series(sel verify.Selector) []verify.Series {
	var out []verify.Series
	for _, le := range []string{"0.1", "1", "+Inf"} {
		s := verify.Series{Labels: map[string]string{"le": le}}
		for i := range 31 {
			s.Points = append(s.Points, verify.Point{T: sec(float64(i)), V: float64(i * len(le))})
		}
		out = append(out, s)
	}
	return out
}

func (e fullEnv) State(kind, name string, t time.Duration) (string, bool) {
	if t < sec(12) {
		return "closed", true
	}
	return "open", true
}

func (e fullEnv) StateChanges(kind, name string) []time.Duration {
	return []time.Duration{ms(12500)}
}

func FuzzParse(f *testing.F) {
	for _, tt := range validCases {
		f.Add(tt.src)
	}
	for _, tt := range invalidCases {
		f.Add(tt.src)
	}
	full := newFullEnv()
	scope := verify.Scope{Window: full.run, DetectFrom: full.phases["fault"], RecoverFrom: full.phases["fault"]}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := verify.Parse(src)
		if err != nil {
			var se *verify.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %T (%v), want *verify.SyntaxError", src, err, err)
			}
			if n := utf8.RuneCountInString(src); se.Col < 1 || se.Col > n+1 {
				t.Fatalf("Parse(%q): col %d outside [1, %d]", src, se.Col, n+1)
			}
			if se.Msg == "" || strings.HasSuffix(se.Msg, ".") {
				t.Fatalf("Parse(%q): malformed message %q", src, se.Msg)
			}
			// Messages are lower-case prose, but may start by quoting the
			// operand at fault as written: "A:x_ratio is a ratio; …".
			first, _, _ := strings.Cut(se.Msg, " ")
			if r, _ := utf8.DecodeRuneInString(se.Msg); unicode.IsUpper(r) && !strings.Contains(src, first) {
				t.Fatalf("Parse(%q): message %q starts upper-case", src, se.Msg)
			}
			return
		}

		if e.String() != src {
			t.Fatalf("String() = %q, want %q", e.String(), src)
		}
		idents := e.Idents()
		if !slices.IsSorted(idents) {
			t.Fatalf("Idents() = %q, not sorted", idents)
		}
		for _, name := range idents {
			if _, ok := verify.Lookup(name); !ok {
				t.Fatalf("Idents() has unknown %q", name)
			}
		}
		if phases := e.Phases(); !slices.IsSorted(phases) || slices.Contains(phases, verify.PhaseRun) {
			t.Fatalf("Phases() = %q: not sorted, or lists %q", phases, verify.PhaseRun)
		}
		// Every selector reads back as itself.
		for _, sel := range e.Selectors() {
			text := sel.String()
			back, err := verify.Parse(text + " == " + text)
			if err != nil {
				t.Fatalf("selector %q of %q does not parse back: %v", text, src, err)
			}
			if got := back.Selectors(); len(got) != 1 || !reflect.DeepEqual(got[0], sel) {
				t.Fatalf("selector %q of %q parses back as %v", text, src, got)
			}
		}
		// A name check against known names passes; against none it fails
		// exactly when there are names to check.
		known := verify.Known{Phases: e.Phases(), States: map[string][]string{}}
		for _, s := range e.States() {
			known.States[s.Kind] = append(known.States[s.Kind], s.Name)
		}
		if err := e.CheckNames(known); err != nil {
			t.Fatalf("CheckNames(%q) with its own names: %v", src, err)
		}
		none := verify.Known{States: map[string][]string{}}
		for kind := range known.States {
			none.States[kind] = nil
		}
		var se *verify.SyntaxError
		if err := e.CheckNames(none); (err != nil) != (len(known.Phases)+len(known.States) > 0) || (err != nil && !errors.As(err, &se)) {
			t.Fatalf("CheckNames(%q) with no names = %v; phases %q, states %v", src, err, known.Phases, known.States)
		}

		// A checked expression must evaluate without panicking, and fail
		// only for missing data.
		res, err := e.Check(full, scope)
		if err != nil && !errors.Is(err, verify.ErrNoData) {
			t.Fatalf("Check(%q) with full data: %v", src, err)
		}
		if err != nil && res.Passed {
			t.Fatalf("Check(%q) passed with an error", src)
		}
		for label := range res.Values {
			if !strings.Contains(res.Observed, label+"=") {
				t.Fatalf("Check(%q): value %q not in Observed %q", src, label, res.Observed)
			}
		}
		// The v1 Env knows load series only: anything else is missing data
		// or an unknown name, never a panic.
		res, err = evalValues(e, mapEnv{})
		if err != nil && !errors.Is(err, verify.ErrNoData) && !errors.Is(err, verify.ErrUnknownName) {
			t.Fatalf("Eval(%q) with no data: %v", src, err)
		}
		if err != nil && res.Passed {
			t.Fatalf("Eval(%q) with no data passed", src)
		}
	})
}
