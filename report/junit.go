package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// JUnit XML has no standard; what CI test reporters (Jenkins, GitLab,
// GitHub Actions reporters, Buildkite, CircleCI, Azure) share is the shape
// of Jenkins' junit-10.xsd, which this writer keeps to: a testsuites root,
// one testsuite for the scenario, one testcase per SLA, and attributes
// only from that schema.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  junitText       `xml:"system-out"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Error     *junitProblem `xml:"error,omitempty"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// Text goes in CDATA sections, which keep its line breaks readable in the
// file and in CI's log views.
type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

type junitText struct {
	Text string `xml:",cdata"`
}

// WriteJUnit writes the verdicts as JUnit XML so CI shows each SLA as a
// test: one suite for the scenario, one test case per SLA, the observed
// value in a failure's message. An SLA that could not be decided (no data)
// is an error, not a failure; one whose phase the run never reached, or
// one not evaluated, is skipped. A run that failed or was interrupted gets one
// more test case, "run", in error, so CI never reads it as green because
// the SLAs passed on what little was recorded.
func WriteJUnit(w io.Writer, r *Report) error {
	suite := junitSuite{
		Name:      r.Scenario,
		Time:      seconds3(r.DurationS),
		Timestamp: r.StartedAt.UTC().Format("2006-01-02T15:04:05"),
		Properties: []junitProperty{
			{"verdict", string(r.Verdict())},
			{"target", r.Target},
			{"seed", strconv.FormatUint(r.Seed, 10)},
			{"resctl_version", r.Version},
			{"schema", r.Schema},
			{"requests_sent", strconv.FormatUint(r.Run.Sent, 10)},
		},
	}
	if r.File != "" {
		suite.Properties = append(suite.Properties, junitProperty{"file", r.File})
	}
	windows := map[string]float64{}
	for _, p := range r.Phases {
		windows[p.Name] = p.EndS - p.StartS
	}
	for _, s := range r.SLAs {
		c := junitCase{Name: s.Name, Classname: r.Scenario, Time: seconds3(r.DurationS)}
		if s.During != "" {
			c.Classname = r.Scenario + "." + s.During
			c.Time = seconds3(windows[s.During])
		}
		switch {
		case s.NotRun:
			c.Skipped = &junitSkipped{Message: "not run: " + notRunText(s)}
			suite.Skipped++
		case s.NotEvaluated != "":
			c.Skipped = &junitSkipped{Message: "not evaluated: " + s.NotEvaluated}
			suite.Skipped++
		case s.Error != "":
			c.Error = &junitProblem{Message: "could not decide: " + s.Error, Type: "SLAUndecided", Text: slaDetail(s)}
			suite.Errors++
		case !s.Passed:
			c.Failure = &junitProblem{Message: slaFailureMessage(s), Type: "SLAFailed", Text: slaDetail(s)}
			suite.Failures++
		}
		suite.Cases = append(suite.Cases, c)
	}
	if v := r.Verdict(); v == VerdictError || v == VerdictInterrupted || v == VerdictAborted {
		msg := r.Error
		switch {
		case msg == "" && r.Aborted != "":
			msg = r.Aborted
		case msg == "":
			msg = "the run was interrupted before its last phase ended"
		}
		suite.Cases = append(suite.Cases, junitCase{Name: "run", Classname: r.Scenario, Time: seconds3(r.DurationS),
			Error: &junitProblem{Message: msg, Type: "Run" + strings.ToUpper(string(v[:1])) + strings.ToLower(string(v[1:]))}})
		suite.Errors++
	}
	suite.Tests = len(suite.Cases)
	var term bytes.Buffer
	if err := WriteTerminal(&term, r, TerminalOptions{}); err != nil {
		return fmt.Errorf("render summary for junit: %w", err)
	}
	suite.SystemOut = junitText{term.String()}
	doc := junitSuites{Name: "resctl", Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors,
		Time: suite.Time, Suites: []junitSuite{suite}}

	sanitizeJUnit(&doc)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("encode junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// slaFailureMessage is the one line CI shows for a failed SLA: what was
// observed against what was expected.
func slaFailureMessage(s SLA) string {
	msg := "observed " + s.Observed + "; expected " + s.Expect
	if s.During != "" {
		msg += " during " + s.During
	}
	if s.AtS != nil {
		msg += " (" + timingWord(s) + " at " + fmtSeconds(*s.AtS) + ")"
	}
	return msg
}

// slaDetail is the failure's body: every measured value in canonical units.
func slaDetail(s SLA) string {
	var b strings.Builder
	fmt.Fprintf(&b, "expect:   %s\n", s.Expect)
	scope := "whole run"
	if s.During != "" {
		scope = s.During
	}
	fmt.Fprintf(&b, "during:   %s\n", scope)
	fmt.Fprintf(&b, "observed: %s\n", s.Observed)
	keys := make([]string, 0, len(s.Values))
	for k := range s.Values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s = %s\n", k, strconv.FormatFloat(s.Values[k], 'g', -1, 64))
	}
	if s.AtS != nil {
		fmt.Fprintf(&b, "%s at %s\n", timingWord(s), fmtSeconds(*s.AtS))
	}
	if s.Error != "" {
		fmt.Fprintf(&b, "error:    %s\n", s.Error)
	}
	return b.String()
}

func seconds3(s float64) string { return strconv.FormatFloat(s, 'f', 3, 64) }

// sanitizeJUnit replaces the characters XML 1.0 cannot hold (most control
// characters, e.g. a terminal escape in an error message) so the document
// stays well-formed whatever the run recorded.
func sanitizeJUnit(doc *junitSuites) {
	for i := range doc.Suites {
		s := &doc.Suites[i]
		s.Name = xmlSafe(s.Name)
		for j := range s.Properties {
			s.Properties[j].Value = xmlSafe(s.Properties[j].Value)
		}
		for j := range s.Cases {
			c := &s.Cases[j]
			c.Name, c.Classname = xmlSafe(c.Name), xmlSafe(c.Classname)
			if c.Skipped != nil {
				c.Skipped.Message = xmlSafe(c.Skipped.Message)
			}
			for _, p := range []*junitProblem{c.Error, c.Failure} {
				if p != nil {
					p.Message, p.Text = xmlSafe(p.Message), xmlSafe(p.Text)
				}
			}
		}
		s.SystemOut.Text = xmlSafe(s.SystemOut.Text)
	}
}

func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r',
			r >= 0x20 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= 0x10FFFF:
			return r
		}
		return '\uFFFD'
	}, s)
}
