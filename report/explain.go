package report

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// What a failed SLA says in words, and what its checks draw on the charts:
// the limit as a line over the stretch it applies to, the seconds that
// broke it shaded, and a timing SLA's deadline beside the instant it
// measured.

// failure is one failed SLA, explained.
type failure struct {
	N       int
	Name    string
	Reasons []string
}

// failures explains every SLA that failed or could not be decided.
func failures(r *Report) []failure {
	var out []failure
	for i, s := range r.SLAs {
		if s.Passed || s.NotRun || s.NotEvaluated != "" {
			continue
		}
		f := failure{N: i + 1, Name: s.Name}
		for _, c := range s.Checks {
			if c.Held || c.Within != "" {
				continue
			}
			if why := checkSentence(s, c); why != "" {
				f.Reasons = append(f.Reasons, why)
			}
		}
		if s.AtS == nil {
			f.Reasons = append(f.Reasons, unchangedStates(r, s)...)
		}
		if s.Error != "" {
			f.Reasons = append(f.Reasons, "could not be decided: "+s.Error)
		}
		if len(f.Reasons) == 0 {
			// A report without checks (an older resctl), or a failure no
			// single comparison explains (an "or" of several).
			f.Reasons = append(f.Reasons, "observed "+s.Observed+"; expected "+s.Expect)
		}
		out = append(out, f)
	}
	return out
}

// checkSentence says how one comparison failed, e.g. "p99 during baseline
// was 127ms, limit < 100ms; broken in seconds 0–1".
func checkSentence(s SLA, c SLACheck) string {
	switch {
	case c.LimitState != "":
		if c.ValueState == "" {
			return c.Subject + " has no state on record; expected " + c.Op + " " + c.LimitState
		}
		return c.Subject + " was " + c.ValueState + " at the end of " + scopeText(s) + "; expected " + c.Op + " " + c.LimitState
	case c.SinceS != nil:
		return timingSentence(s, c)
	case c.Value == nil:
		return ""
	}
	subject := c.Subject
	if !strings.Contains(subject, " during ") && !strings.Contains(subject, " over ") {
		subject += " " + scopePhrase(s)
	}
	b := subject + " was " + fmtUnit(*c.Value, c.Unit)
	if c.Limit != nil {
		b += ", limit " + c.Op + " " + fmtUnit(*c.Limit, c.Unit)
	}
	if len(c.Breaches) > 0 {
		b += "; broken in " + breachText(c.Breaches)
	}
	return b
}

func timingSentence(s SLA, c SLACheck) string {
	word := "detected"
	if c.Subject == "recovery_time" || strings.HasPrefix(c.Subject, "recovery_time#") {
		word = "recovered"
	}
	since := *c.SinceS
	deadline := ""
	if c.Limit != nil {
		deadline = "deadline " + fmtSeconds(since+*c.Limit) + " (" + c.Op + " " + fmtUnit(*c.Limit, "duration") + " after " + fmtSeconds(since) + ")"
	}
	if c.Value == nil {
		out := c.Subject + ": never " + word + ", counting from " + fmtSeconds(since)
		if deadline != "" {
			out += "; " + deadline
		}
		return out
	}
	out := c.Subject + " was " + fmtUnit(*c.Value, "duration") + ": " + word + " at " + fmtSeconds(since+*c.Value)
	if deadline != "" {
		out += ", " + deadline
	}
	return out
}

// unchangedStates says, for a timing SLA whose event never came, which
// guard states its condition waited on never changed at all: "breaker
// orders stayed closed the whole run".
func unchangedStates(r *Report, s SLA) []string {
	var out []string
	for _, c := range s.Checks {
		if c.Within == "" || c.StateKind == "" {
			continue
		}
		for _, g := range r.Guards {
			line := g.Kind + " " + g.Name + " stayed " + g.Initial + " the whole run"
			if g.Kind == c.StateKind && g.Name == c.StateName && !changed(r, g) && !slices.Contains(out, line) {
				out = append(out, line)
			}
		}
	}
	return out
}

// changed says whether a guard policy has any transition on record.
func changed(r *Report, g GuardState) bool {
	for _, e := range r.Events {
		if e.Source == "guard" && e.Kind == "transition" && e.Name == g.Name && guardKind(e) == g.Kind {
			return true
		}
	}
	return false
}

// guardKind is the kind of policy a guard transition is of, when its
// detail says ("breaker orders: closed → open"); "" otherwise.
func guardKind(e Event) string {
	kind, rest, ok := strings.Cut(e.Detail, " ")
	if !ok || !strings.HasPrefix(rest, e.Name+":") {
		return ""
	}
	return kind
}

// scopePhrase is where an SLA's values were read: "during baseline",
// "over the run".
func scopePhrase(s SLA) string {
	if s.During != "" {
		return "during " + s.During
	}
	return "over the run"
}

func scopeText(s SLA) string {
	if s.During != "" {
		return s.During
	}
	return "the run"
}

// breachText lists the stretches that broke a limit, in whole seconds
// where they are ("seconds 0–1, 7"), at most six of them.
func breachText(bs [][2]float64) string {
	const most = 6
	var parts []string
	total := 0.0
	for i, b := range bs {
		total += b[1] - b[0]
		if i >= most {
			continue
		}
		a, z := b[0], b[1]
		switch {
		case a == math.Trunc(a) && z == math.Trunc(z) && z-a == 1:
			parts = append(parts, strconv.FormatFloat(a, 'f', 0, 64))
		case a == math.Trunc(a) && z == math.Trunc(z):
			parts = append(parts, strconv.FormatFloat(a, 'f', 0, 64)+"–"+strconv.FormatFloat(z-1, 'f', 0, 64))
		default:
			parts = append(parts, fmtSeconds(a)+"–"+fmtSeconds(z))
		}
	}
	out := "seconds " + strings.Join(parts, ", ")
	if len(bs) > most {
		out += " and " + strconv.Itoa(len(bs)-most) + " more stretches"
	}
	if len(bs) > 1 {
		out += " (" + fmtSeconds(total) + " in all)"
	}
	return out
}

// fmtUnit writes a canonical value of an SLA unit for people.
func fmtUnit(v float64, unit string) string {
	switch unit {
	case "ratio":
		return trimZeros(strconv.FormatFloat(v*100, 'f', 2, 64)) + "%"
	case "duration":
		return fmtMs(v * 1000)
	case "rate":
		return fmtNum(v) + "/s"
	case "bytes":
		return fmtBytes(v)
	}
	return fmtNum(v)
}

// slaWindow is the stretch an SLA's values were read over.
func slaWindow(r *Report, s SLA) (from, to float64) {
	for _, p := range r.Phases {
		if p.Name == s.During {
			return p.StartS, p.EndS
		}
	}
	return 0, timelineEnd(r)
}

// overlay is what an SLA check draws on a chart, in the chart's values.
type overlay struct {
	n     int
	sla   SLA
	check SLACheck
	from  float64 // the stretch the limit applies to
	to    float64
	scale float64 // canonical value → the chart's unit
}

// overlaysFor are the checks of every SLA that read what match accepts.
func overlaysFor(r *Report, match func(SLACheck) bool) []overlay {
	var out []overlay
	for i, s := range r.SLAs {
		if s.NotRun || s.NotEvaluated != "" {
			continue
		}
		for _, c := range s.Checks {
			if c.Limit == nil || !match(c) {
				continue
			}
			from, to := slaWindow(r, s)
			out = append(out, overlay{n: i + 1, sla: s, check: c, from: from, to: to, scale: 1})
		}
	}
	return out
}

// limit is where the overlay's limit lies in the chart's values.
func (o overlay) limit() float64 { return *o.check.Limit * o.scale }

// draw adds the overlay's limit line and shaded breaches to a chart.
func (tl timeline) draw(c *svgChart, ys yScale, os []overlay) {
	for _, o := range os {
		class := "pass"
		if !o.sla.Passed {
			class = "fail"
		}
		y := round1(ys.y(o.limit()))
		label := "SLA " + strconv.Itoa(o.n) + ": " + o.check.Subject + " " + o.check.Op + " " + fmtUnit(*o.check.Limit, o.check.Unit)
		c.Limits = append(c.Limits, svgLimit{X1: tl.ax.x(o.from), X2: tl.ax.x(o.to), Y: y, Class: "limit " + class,
			Label: strconv.Itoa(o.n), Title: label + " (" + scopePhrase(o.sla) + ")"})
		for _, b := range o.check.Breaches {
			x0, x1 := tl.ax.x(b[0]), tl.ax.x(b[1])
			c.Shades = append(c.Shades, svgShade{X: x0, W: round1(math.Max(x1-x0, 1)), Class: "breach",
				Title: "SLA " + strconv.Itoa(o.n) + " broken: " + o.check.Subject + " " + fmtSeconds(b[0]) + " – " + fmtSeconds(b[1])})
		}
	}
}

// extent widens lo and hi to take in the overlays' limits, so a limit is
// drawn inside its chart even when the data stays far from it.
func extentWith(lo, hi float64, os []overlay) (float64, float64) {
	for _, o := range os {
		lo, hi = math.Min(lo, o.limit()), math.Max(hi, o.limit())
	}
	return lo, hi
}

// deadlines are the timing SLAs' deadlines, drawn on every chart beside
// the flag of the instant measured.
func deadlines(r *Report, ax axis) []svgVLine {
	var out []svgVLine
	for i, s := range r.SLAs {
		for _, c := range s.Checks {
			if c.SinceS == nil || c.Limit == nil || c.Within != "" {
				continue
			}
			class := "deadline pass"
			if !c.Held {
				class = "deadline fail"
			}
			at := *c.SinceS + *c.Limit
			title := "SLA " + strconv.Itoa(i+1) + " “" + s.Name + "”: deadline " + fmtSeconds(at) + " (" + c.Subject + " " + c.Op + " " +
				fmtUnit(*c.Limit, "duration") + " from " + fmtSeconds(*c.SinceS) + ")"
			// SLAs with the same deadline share one line, labelled with
			// each number, failed if any of them failed.
			x := ax.x(at)
			if j := slices.IndexFunc(out, func(v svgVLine) bool { return math.Abs(v.X-x) < 1 }); j >= 0 {
				out[j].Label += ", " + strconv.Itoa(i+1)
				out[j].Title += "; " + title
				if !c.Held {
					out[j].Class = class
				}
				continue
			}
			out = append(out, svgVLine{X: x, Class: class, Label: "deadline " + strconv.Itoa(i+1), Title: title})
		}
	}
	return out
}
