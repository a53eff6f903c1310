package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// maxMarkdownTransitions bounds the guard transitions listed per policy: a
// flapping breaker would otherwise bury the summary.
const maxMarkdownTransitions = 8

// WriteMarkdown writes a short GitHub-flavoured summary of the run: the
// verdict, the SLAs with observed values, the phases, the faults and the
// guard transitions. It is written for a CI job's summary page
// ($GITHUB_STEP_SUMMARY) or a pull-request comment, so it leads with what
// failed and stays short; the HTML report holds the detail.
func WriteMarkdown(w io.Writer, r *Report) error {
	var b strings.Builder
	v := r.Verdict()
	icon := "❌"
	switch v {
	case VerdictPassed:
		icon = "✅"
	case VerdictRecorded:
		icon = "📼"
	}
	fmt.Fprintf(&b, "## %s resctl · %s: %s\n\n", icon, mdText(r.Scenario), v)
	fmt.Fprintf(&b, "target %s · %s · seed %d · %d requests sent · resctl %s\n\n",
		mdCode(r.Target), fmtSeconds(r.DurationS), r.Seed, r.Run.Sent, mdText(r.Version))
	if r.Error != "" {
		fmt.Fprintf(&b, "> **Error:** %s\n\n", mdText(r.Error))
	}
	if r.Aborted != "" {
		fmt.Fprintf(&b, "> **Aborted:** %s\n\n", mdText(r.Aborted))
	}
	if r.Interrupted {
		b.WriteString("> ⚠️ The run was interrupted; this is what was recorded until then.\n\n")
	}
	if r.Reached != "" {
		fmt.Fprintf(&b, "> It stopped while %s.\n\n", mdText(r.Reached))
	}
	if r.Run.GeneratorBehind {
		fmt.Fprintf(&b, "> ⚠️ The load generator fell behind: %s.\n\n", r.Run.behind())
	}

	if len(r.SLAs) > 0 {
		passed, notRun, notEvaluated := 0, 0, 0
		for _, s := range r.SLAs {
			switch {
			case s.NotRun:
				notRun++
			case s.NotEvaluated != "":
				notEvaluated++
			case s.Passed:
				passed++
			}
		}
		fmt.Fprintf(&b, "### SLAs: %d of %d passed", passed, len(r.SLAs)-notEvaluated)
		if notRun > 0 {
			fmt.Fprintf(&b, ", %d not run", notRun)
		}
		if notEvaluated > 0 {
			fmt.Fprintf(&b, ", %d not evaluated", notEvaluated)
		}
		b.WriteString("\n\n")
		b.WriteString("| | SLA | during | expect | observed |\n|---|---|---|---|---|\n")
		for _, s := range r.SLAs {
			mark := "✅"
			switch {
			case s.NotRun:
				mark = "⏭️"
			case s.NotEvaluated != "":
				mark = "➖"
			case !s.Passed:
				mark = "❌"
			}
			scope := "whole run"
			if s.During != "" {
				scope = s.During
			}
			obs := mdText(s.Observed)
			if s.NotRun {
				obs = "not run: " + mdText(notRunText(s))
			}
			if s.AtS != nil {
				obs += " (" + timingWord(s) + " at " + fmtSeconds(*s.AtS) + ")"
			}
			if s.Error != "" {
				obs += " — " + mdText(s.Error)
			}
			if s.NotEvaluated != "" {
				obs = "not evaluated: " + mdText(s.NotEvaluated)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", mark, mdText(s.Name), mdText(scope), mdCode(s.Expect), obs)
		}
		b.WriteString("\n")
	}

	fallbacks := false
	for _, p := range r.Phases {
		fallbacks = fallbacks || p.Fallbacks > 0
	}
	b.WriteString("### Phases\n\n| phase | time | requests | rps | success | errors |")
	if fallbacks {
		b.WriteString(" fallbacks |")
	}
	b.WriteString(" p50 | p95 | p99 | max | service p99 |\n|---|---|--:|--:|--:|--:|")
	if fallbacks {
		b.WriteString("--:|")
	}
	b.WriteString("--:|--:|--:|--:|--:|\n")
	cols := 11
	if fallbacks {
		cols++
	}
	for _, p := range append(append([]Phase{}, r.Phases...), r.Total) {
		name := mdText(p.Name)
		if p.Name == "" {
			name = "**total**"
		}
		if p.NotRun {
			fmt.Fprintf(&b, "| %s | not run |%s\n", name, strings.Repeat(" |", cols-2))
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.1f | %s | %d |", name, fmtOffsetRange(p.StartS, p.EndS), p.Requests, p.RPS,
			pct(p.SuccessRate, p.Requests), p.Errors)
		if fallbacks {
			fmt.Fprintf(&b, " %d |", p.Fallbacks)
		}
		fmt.Fprintf(&b, " %s | %s | %s | %s | %s |\n", ms(p.LatencyMs.P50, p.Requests), ms(p.LatencyMs.P95, p.Requests),
			ms(p.LatencyMs.P99, p.Requests), ms(p.LatencyMs.Max, p.Requests), serviceP99(p))
	}
	b.WriteString("\n")

	if len(r.ErrorReasons) > 0 {
		b.WriteString("### Error reasons\n\n| kind | reason |")
		for _, p := range r.Phases {
			fmt.Fprintf(&b, " %s |", mdText(p.Name))
		}
		b.WriteString(" total |\n|---|---|" + strings.Repeat("--:|", len(r.Phases)+1) + "\n")
		for _, e := range r.ErrorReasons {
			fmt.Fprintf(&b, "| %s | %s |", mdText(e.Kind), mdCode(e.Reason))
			for _, n := range e.Phases {
				fmt.Fprintf(&b, " %d |", n)
			}
			fmt.Fprintf(&b, " %d |\n", e.Total)
		}
		b.WriteString("\n")
	}

	if len(r.Faults) > 0 {
		b.WriteString("### Faults\n\n| fault | kind | phase | injected / matched | effective | configured |\n|---|---|---|--:|--:|--:|\n")
		for _, f := range r.Faults {
			if f.NotRun {
				fmt.Fprintf(&b, "| %s | %s | %s | not run | – | – |\n", mdText(f.ID), mdText(f.Kind), mdText(f.Phase))
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %d / %d | %s | %s |\n", mdText(f.ID), mdText(f.Kind), mdText(f.Phase),
				f.Injected, f.Matched, pctText(f.EffectiveRate), pctText(f.ConfiguredRate))
		}
		b.WriteString("\n")
	}

	writeGuardTransitions(&b, r)
	if len(r.ScrapeErrors) > 0 {
		fmt.Fprintf(&b, "> ⚠️ %d scrape(s) failed; scraped series have gaps.\n\n", len(r.ScrapeErrors))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeGuardTransitions lists, per guard policy, when it changed state.
func writeGuardTransitions(b *strings.Builder, r *Report) {
	var order []string
	byName := map[string][]Event{}
	for _, e := range r.Events {
		if e.Source != "guard" || e.Kind != "transition" {
			continue
		}
		if _, ok := byName[e.Name]; !ok {
			order = append(order, e.Name)
		}
		byName[e.Name] = append(byName[e.Name], e)
	}
	if len(order) == 0 {
		return
	}
	b.WriteString("### Guard transitions\n\n")
	for _, name := range order {
		evs := byName[name]
		parts := make([]string, 0, min(len(evs), maxMarkdownTransitions))
		for i, e := range evs {
			if i == maxMarkdownTransitions {
				parts = append(parts, "… "+strconv.Itoa(len(evs)-i)+" more")
				break
			}
			parts = append(parts, mdText(e.From)+" → "+mdText(e.To)+" at "+fmtSeconds(e.AtS))
		}
		fmt.Fprintf(b, "- %s: %s\n", mdCode(name), strings.Join(parts, ", "))
	}
	b.WriteString("\n")
}

var mdReplacer = strings.NewReplacer("|", `\|`, "\n", " ", "\r", "", "<", "&lt;", "&", "&amp;", "*", `\*`, "`", "\\`", "[", `\[`, "]", `\]`)

// mdText makes text safe in a Markdown table cell: no cell breaks, no line
// breaks, no HTML tags or entities, no emphasis or links. Underscores stay: GitHub does not
// emphasise inside words, and series names are snake_case.
func mdText(s string) string { return mdReplacer.Replace(s) }

// mdCode writes s as inline code, which shows operators such as < and *
// as they are; only the pipe must still be escaped inside a table.
func mdCode(s string) string {
	if s == "" {
		return ""
	}
	s = strings.NewReplacer("|", `\|`, "\n", " ", "\r", "").Replace(s)
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}
