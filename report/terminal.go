package report

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"charm.land/lipgloss/v2"
	"charm.land/lipgloss/v2/table"
	"github.com/charmbracelet/colorprofile"
)

// TerminalOptions say how the summary is drawn.
type TerminalOptions struct {
	// Styled draws colours and box borders; otherwise the summary is plain
	// ASCII, for logs and CI.
	Styled bool
	// Paths lists the files the run wrote, shown at the end.
	Paths []string
}

// IsTerminal reports whether w is a terminal that takes colour, honouring
// NO_COLOR and CLICOLOR_FORCE.
func IsTerminal(w io.Writer) bool {
	return colorprofile.Detect(w, os.Environ()) > colorprofile.NoTTY
}

var (
	passStyle = lipgloss.NewStyle().Foreground(lipgloss.Color("2")).Bold(true)
	failStyle = lipgloss.NewStyle().Foreground(lipgloss.Color("1")).Bold(true)
	dimStyle  = lipgloss.NewStyle().Foreground(lipgloss.Color("8"))
	headStyle = lipgloss.NewStyle().Bold(true)
)

// WriteTerminal writes the human summary of a run: a header with the
// verdict, a table of phases, the SLA verdicts with observed values, and the
// faults with what they did.
func WriteTerminal(w io.Writer, r *Report, o TerminalOptions) error {
	var b strings.Builder
	style := func(s lipgloss.Style, text string) string {
		if !o.Styled {
			return text
		}
		return s.Render(text)
	}
	v := r.Verdict()
	verdict := style(failStyle, string(v))
	if v == VerdictPassed || v == VerdictRecorded {
		verdict = style(passStyle, string(v))
	}
	head := "resctl run"
	switch {
	case r.Shard == "1/1":
		head = "resctl load"
	case r.Shard != "":
		head = "resctl load, shard " + r.Shard + ","
	}
	fmt.Fprintf(&b, "%s %s: %s\n", style(headStyle, head), r.Scenario, verdict)
	fmt.Fprintf(&b, "%s\n\n", style(dimStyle, fmt.Sprintf("target %s · %.1fs · seed %d · %d requests sent", r.Target, r.DurationS, r.Seed, r.Run.Sent)))
	if r.Error != "" {
		fmt.Fprintf(&b, "error: %s\n\n", r.Error)
	}
	if r.Reached != "" {
		fmt.Fprintf(&b, "stopped while %s\n\n", r.Reached)
	}
	if r.Aborted != "" {
		fmt.Fprintf(&b, "aborted: %s\n\n", r.Aborted)
	}
	if r.Run.GeneratorBehind {
		fmt.Fprintf(&b, "%s the load generator fell behind: %s; the target saw a gentler load than the scenario asks for (raise load.max_in_flight or give resctl more CPU); latencies are response times, from when each request was due\n\n",
			style(failStyle, "warning:"), r.Run.behind())
	}

	// When the generator fell behind, response and service times part:
	// show both, and how late requests went out.
	behind := r.Run.GeneratorBehind
	// A run whose fallbacks answered shows how many: their successes are
	// not the upstream's.
	fallbacks := false
	for _, p := range r.Phases {
		fallbacks = fallbacks || p.Fallbacks > 0
	}
	heads := []string{"phase", "time", "requests", "rps", "success"}
	if fallbacks {
		heads = append(heads, "fallbacks")
	}
	heads = append(heads, "p50", "p90", "p99", "max")
	if behind {
		heads = append(heads, "service p99", "lag p99")
	}
	t := newTable(o.Styled).Headers(heads...)
	for _, p := range append(append([]Phase{}, r.Phases...), r.Total) {
		name := p.Name
		if name == "" {
			name = "total"
		}
		if p.NotRun {
			t.Row(append([]string{name, "not run"}, make([]string, len(heads)-2)...)...)
			continue
		}
		row := []string{name, fmtOffsetRange(p.StartS, p.EndS), strconv.FormatUint(p.Requests, 10),
			fmt.Sprintf("%.1f", p.RPS), pct(p.SuccessRate, p.Requests)}
		if fallbacks {
			row = append(row, strconv.FormatUint(p.Fallbacks, 10))
		}
		row = append(row, ms(p.LatencyMs.P50, p.Requests), ms(p.LatencyMs.P90, p.Requests),
			ms(p.LatencyMs.P99, p.Requests), ms(p.LatencyMs.Max, p.Requests))
		if behind {
			lag := "–"
			if p.LagMs != nil {
				lag = ms(p.LagMs.P99, p.Requests)
			}
			row = append(row, serviceP99(p), lag)
		}
		t.Row(row...)
	}
	b.WriteString(t.Render())
	b.WriteString("\n")

	if len(r.ErrorReasons) > 0 {
		b.WriteString("\n" + style(headStyle, "Error reasons") + "\n")
		heads := []string{"kind", "reason"}
		for _, p := range r.Phases {
			heads = append(heads, p.Name)
		}
		t := newTable(o.Styled).Headers(append(heads, "total")...)
		for _, e := range r.ErrorReasons {
			row := []string{e.Kind, e.Reason}
			for _, n := range e.Phases {
				row = append(row, strconv.FormatUint(n, 10))
			}
			t.Row(append(row, strconv.FormatUint(e.Total, 10))...)
		}
		b.WriteString(t.Render())
		b.WriteString("\n")
	}

	if len(r.Faults) > 0 {
		b.WriteString("\n" + style(headStyle, "Faults") + "\n")
		idW, kindW := 0, 0
		for _, f := range r.Faults {
			idW, kindW = max(idW, len(f.ID)), max(kindW, len(f.Kind+onProxy(f)))
		}
		for _, f := range r.Faults {
			if f.NotRun {
				fmt.Fprintf(&b, "  %-*s  %-*s  %s\n", idW, f.ID, kindW, f.Kind+onProxy(f), style(dimStyle, "not run: the run stopped before phase "+f.Phase))
				continue
			}
			if f.Layer == "runtime" {
				fmt.Fprintf(&b, "  %-*s  %-*s  ", idW, f.ID, kindW, f.Kind+onProxy(f))
				if f.Fired {
					fmt.Fprintf(&b, "ran inside the target for %.1fs\n", f.EndS-f.StartS)
				} else {
					b.WriteString(style(failStyle, "did not start") + ": " + f.Error + "\n")
				}
				continue
			}
			if f.Layer == "network" {
				b.WriteString(networkFaultLine(f, idW, kindW, style))
				continue
			}
			if f.Layer == "process" {
				fmt.Fprintf(&b, "  %-*s  %-*s  acted %d of %d times", idW, f.ID, kindW, f.Kind, f.Injected, f.Matched)
				if f.Fired {
					fmt.Fprintf(&b, "; the process was back %.2fs after the first", f.EndS-f.StartS)
				}
				if f.Error != "" {
					b.WriteString("  " + style(failStyle, f.Error))
				}
				b.WriteString("\n")
				continue
			}
			unit := "requests"
			if f.Layer == "tcp" {
				unit = "connections"
			}
			fmt.Fprintf(&b, "  %-*s  %-*s  injected %d of %d matched %s (%s; configured %s)",
				idW, f.ID, kindW, f.Kind+onProxy(f), f.Injected, f.Matched, unit,
				strconv.FormatFloat(f.EffectiveRate*100, 'f', 1, 64)+"%",
				pctText(f.ConfiguredRate))
			if !f.Fired && f.Injected == 0 {
				b.WriteString("  " + style(failStyle, "never fired"))
			}
			b.WriteString("\n")
		}
	}

	if len(r.Processes) > 0 {
		b.WriteString("\n" + style(headStyle, "Processes") + "\n")
		nameW := 0
		for _, p := range r.Processes {
			nameW = max(nameW, len(p.Name))
		}
		for _, p := range r.Processes {
			fmt.Fprintf(&b, "  %-*s  %s, restarts %d, not ready %.2fs", nameW, p.Name, p.State, p.Restarts, p.NotReadyS)
			if len(p.ReadyS) > 1 {
				var times []string
				for _, t := range p.ReadyS[1:] {
					times = append(times, strconv.FormatFloat(t, 'f', 2, 64)+"s")
				}
				b.WriteString(", ready again in " + strings.Join(times, ", "))
			}
			b.WriteString("\n")
		}
	}

	if len(r.SLAs) > 0 {
		b.WriteString("\n" + style(headStyle, "SLAs") + "\n")
		for _, s := range r.SLAs {
			mark := style(passStyle, s.Outcome())
			switch {
			case s.NotRun, s.NotEvaluated != "":
				mark = style(dimStyle, s.Outcome())
			case !s.Passed:
				mark = style(failStyle, s.Outcome())
			}
			scope := "whole run"
			if s.During != "" {
				scope = s.During
			}
			fmt.Fprintf(&b, "  %s  %s %s\n", mark, s.Name, style(dimStyle, "("+scope+")"))
			if s.Name != s.Expect {
				fmt.Fprintf(&b, "        expect   %s\n", s.Expect)
			}
			if s.NotRun {
				fmt.Fprintf(&b, "        observed nothing: %s\n", notRunText(s))
				continue
			}
			if s.NotEvaluated != "" {
				fmt.Fprintf(&b, "        not evaluated: %s\n", s.NotEvaluated)
				continue
			}
			obs := s.Observed
			if s.Error != "" {
				obs += " — " + s.Error
			}
			fmt.Fprintf(&b, "        observed %s\n", obs)
		}
	}
	for _, p := range o.Paths {
		fmt.Fprintf(&b, "\n%s %s", style(dimStyle, "wrote"), p)
	}
	if len(o.Paths) > 0 {
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func newTable(styled bool) *table.Table {
	t := table.New()
	if !styled {
		return t.Border(lipgloss.ASCIIBorder()).BorderRow(false).
			StyleFunc(func(_, _ int) lipgloss.Style { return lipgloss.NewStyle().Padding(0, 1) })
	}
	return t.Border(lipgloss.RoundedBorder()).BorderStyle(dimStyle).
		StyleFunc(func(row, _ int) lipgloss.Style {
			s := lipgloss.NewStyle().Padding(0, 1)
			if row == table.HeaderRow {
				return s.Bold(true)
			}
			return s
		})
}

func pct(v float64, n uint64) string {
	if n == 0 {
		return "–"
	}
	return strconv.FormatFloat(v*100, 'f', 2, 64) + "%"
}

func ms(v float64, n uint64) string {
	if n == 0 {
		return "–"
	}
	switch {
	case v >= 1000:
		return strconv.FormatFloat(v/1000, 'f', 2, 64) + "s"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64) + "ms"
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64) + "ms"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "ms"
}

// onProxy names a fault's proxy when it is not the main one.
func onProxy(f Fault) string {
	if f.Proxy == "" || f.Proxy == "proxy" {
		return ""
	}
	return " on " + f.Proxy
}

// networkFaultLine is a network fault's line: how long it was on the
// link and the packets that met it.
func networkFaultLine(f Fault, idW, kindW int, style func(lipgloss.Style, string) string) string {
	head := fmt.Sprintf("  %-*s  %-*s  ", idW, f.ID, kindW, f.Kind+onProxy(f))
	if f.Matched == 0 && f.Error != "" {
		return head + style(failStyle, "did not start") + ": " + f.Error + "\n"
	}
	on := f.OnS
	if on == 0 {
		on = f.EndS - f.StartS
	}
	line := head + "on the link for " + strconv.FormatFloat(on, 'f', 1, 64) + "s, "
	switch {
	case f.Matched == 0:
		line += style(failStyle, "no packets crossed it")
	case f.ConfiguredRate < 1: // a loss: it acts on a share
		line += fmt.Sprintf("dropped %d of %d packets (%s; configured %s)", f.Injected, f.Matched,
			strconv.FormatFloat(f.EffectiveRate*100, 'f', 1, 64)+"%", strconv.FormatFloat(f.ConfiguredRate*100, 'f', -1, 64)+"%")
		if !f.Fired {
			line += "  " + style(failStyle, "never fired")
		}
	default:
		line += fmt.Sprintf("%d packets met it", f.Matched)
	}
	if f.Error != "" {
		line += "; " + style(failStyle, "error") + ": " + f.Error
	}
	return line + "\n"
}
