package scenario

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a scenario file.
type Problem struct {
	// Path is the key path of the offending value, e.g.
	// "phases[1].faults[0].latency.percent"; empty for file-level problems.
	Path string
	// Line and Col locate the problem in the file, 1-based.
	Line, Col int
	Msg       string
}

// ValidationError lists every problem found in a scenario file. Its message
// prints one problem per line as "file:line:col: path: message".
type ValidationError struct {
	File     string
	Problems []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s:%d:%d: ", e.File, p.Line, p.Col)
		if p.Path != "" {
			b.WriteString(p.Path)
			b.WriteString(": ")
		}
		b.WriteString(p.Msg)
	}
	return b.String()
}
