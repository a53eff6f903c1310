package verify_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/resctl/resctl/verify"
)

func FuzzParse(f *testing.F) {
	for _, tt := range validCases {
		f.Add(tt.src)
	}
	for _, tt := range invalidCases {
		f.Add(tt.src)
	}
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
			if r, _ := utf8.DecodeRuneInString(se.Msg); unicode.IsUpper(r) {
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

		// A checked expression must evaluate without panicking, and fail
		// only for missing data.
		res, err := e.Eval(window)
		if err != nil {
			t.Fatalf("Eval(%q) with every series: %v", src, err)
		}
		if len(res.Values) != len(idents) {
			t.Fatalf("Eval(%q): %d values for %d series", src, len(res.Values), len(idents))
		}
		res, err = e.Eval(mapEnv{})
		if (len(idents) > 0) != errors.Is(err, verify.ErrNoData) {
			t.Fatalf("Eval(%q) with no data: err = %v for series %q", src, err, idents)
		}
		if err != nil && res.Passed {
			t.Fatalf("Eval(%q) with no data passed", src)
		}
	})
}
