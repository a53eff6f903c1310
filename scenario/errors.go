package scenario

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/resctl/resctl/internal/strictyaml"
)

// Problem is one thing wrong with a scenario file: its key path, line,
// column and message.
type Problem = strictyaml.Problem

// ValidationError lists every problem found in a scenario file. Its message
// prints one problem per line as "file:line:col: path: message": the first
// Max of them, then how many more there are, so a file of a hundred
// thousand mistakes is told in a screenful.
type ValidationError struct {
	File     string
	Problems []Problem
	// Max is how many problems the messages print; 0 means
	// DefaultMaxProblems.
	Max int

	lines     []string // the file's text, for Detailed
	overLimit bool
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	for i, p := range e.shown() {
		if i > 0 {
			b.WriteByte('\n')
		}
		e.writeProblem(&b, p)
	}
	e.writeMore(&b)
	return b.String()
}

// OverLimit says the file was refused for its size or its number of
// nodes, not for what it says.
func (e *ValidationError) OverLimit() bool { return e.overLimit }

// shown returns the problems the messages print.
func (e *ValidationError) shown() []Problem {
	max := e.Max
	if max <= 0 {
		max = DefaultMaxProblems
	}
	return e.Problems[:min(max, len(e.Problems))]
}

// writeMore says how many problems are not printed, if any.
func (e *ValidationError) writeMore(b *strings.Builder) {
	if more := len(e.Problems) - len(e.shown()); more > 0 {
		fmt.Fprintf(b, "\n%s: and %d more problems", e.File, more)
	}
}

// writeProblem writes "file:line:col: path: message".
func (e *ValidationError) writeProblem(b *strings.Builder, p Problem) {
	fmt.Fprintf(b, "%s:%d:%d: ", e.File, p.Line, p.Col)
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
}

// Detailed prints every problem like Error, each followed by the line of
// the file it is on and a caret under its column, so a person sees the
// mistake in place without opening the file.
func (e *ValidationError) Detailed() string {
	var b strings.Builder
	for i, p := range e.shown() {
		if i > 0 {
			b.WriteByte('\n')
		}
		e.writeProblem(&b, p)
		if p.Line >= 1 && p.Line <= len(e.lines) {
			line := strings.TrimRight(e.lines[p.Line-1], "\r")
			if strings.TrimSpace(line) == "" {
				continue
			}
			line, col := excerpt(printable(line), p.Col)
			// Tabs keep their width so the caret lines up.
			var pad strings.Builder
			for j, r := range []rune(line) {
				if j >= col-1 {
					break
				}
				if r == '\t' {
					pad.WriteRune('\t')
				} else {
					pad.WriteByte(' ')
				}
			}
			fmt.Fprintf(&b, "\n    %s\n    %s^", line, pad.String())
		}
	}
	e.writeMore(&b)
	return b.String()
}

// printable is line with every control character but a tab, and every
// character that reorders text (bidirectional controls), shown as a
// visible character of the same width: an excerpt of a file is printed
// to a terminal, and a file's escape sequences must not reach it. C0
// controls and DEL become their Unicode control pictures (␛, ␇, ␡); the
// others the replacement character.
func printable(line string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t':
			return r
		case r < 0x20:
			return 0x2400 + r
		case r == 0x7f:
			return 0x2421
		case unicode.IsControl(r), unicode.Is(unicode.Bidi_Control, r):
			return unicode.ReplacementChar
		}
		return r
	}, line)
}

// excerptWidth is how much of a long line Detailed shows, in runes.
const excerptWidth = 120

// excerpt cuts a long line to the part around column col (1-based, in
// runes), marking what it leaves out with "…", and returns the column in
// the excerpt.
func excerpt(line string, col int) (string, int) {
	r := []rune(line)
	if len(r) <= excerptWidth {
		return line, col
	}
	start := max(0, min(col-1-excerptWidth/2, len(r)-excerptWidth))
	end := min(len(r), start+excerptWidth)
	out := string(r[start:end])
	if start > 0 {
		out = "…" + out
		col = col - start + 1
	}
	if end < len(r) {
		out += "…"
	}
	return out, col
}
