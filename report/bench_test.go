package report

import (
	"bytes"
	"io"
	"testing"
)

// countingWriter counts what a renderer writes, so the benchmark reports
// each format's size without keeping it.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// BenchmarkRender_OneHour renders a one-hour run with 20 scraped series in
// every format: the budget is under a second for all of them, and under
// 2 MB for the HTML file.
func BenchmarkRender_OneHour(b *testing.B) { benchmarkRender(b, oneHourFixture(20)) }

// BenchmarkRender_OneHourFailing renders the one-hour run with ten SLAs,
// three of them failing with their breaches drawn: the same budget.
func BenchmarkRender_OneHourFailing(b *testing.B) { benchmarkRender(b, oneHourFailingFixture()) }

func benchmarkRender(b *testing.B, r *Report) {
	formats := []struct {
		name  string
		write func(io.Writer, *Report) error
	}{
		{"json", WriteJSON},
		{"html", WriteHTML},
		{"junit", WriteJUnit},
		{"markdown", WriteMarkdown},
		{"terminal", func(w io.Writer, r *Report) error { return WriteTerminal(w, r, TerminalOptions{}) }},
	}
	for _, f := range formats {
		b.Run(f.name, func(b *testing.B) {
			var w countingWriter
			for b.Loop() {
				w.n = 0
				if err := f.write(&w, r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(w.n), "bytes/op-out")
		})
	}
	b.Run("all", func(b *testing.B) {
		for b.Loop() {
			for _, f := range formats {
				if err := f.write(io.Discard, r); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkReadJSON_OneHour reads the one-hour report.json back, the other
// half of what resctl report does.
func BenchmarkReadJSON_OneHour(b *testing.B) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, oneHourFixture(20)); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	for b.Loop() {
		if _, err := ReadJSON(bytes.NewReader(buf.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}
