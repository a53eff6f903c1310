package report

// Verdict is the one-word outcome every format leads with, so the terminal,
// the HTML header, the Markdown title and the JUnit suite never disagree
// about what happened.
type Verdict string

// The verdicts, from the worst down: a run that failed or was interrupted
// says so even if its SLAs passed on what was recorded.
const (
	VerdictError       Verdict = "ERROR"
	VerdictInterrupted Verdict = "INTERRUPTED"
	VerdictAborted     Verdict = "ABORTED"
	VerdictFailed      Verdict = "FAILED"
	VerdictPassed      Verdict = "PASSED"
	// VerdictRecorded is a chaos session's, or a load shard's (whose
	// SLAs are judged over every shard's load, when they are merged):
	// what happened, with nothing to judge it by.
	VerdictRecorded Verdict = "RECORDED"
)

// Verdict decides the run's outcome.
func (r *Report) Verdict() Verdict {
	switch {
	case r.Error != "":
		return VerdictError
	case r.Interrupted:
		return VerdictInterrupted
	case r.Aborted != "":
		return VerdictAborted
	case !r.Passed:
		return VerdictFailed
	case r.Session && len(r.SLAs) == 0, r.Shard != "" && !r.judged():
		return VerdictRecorded
	}
	return VerdictPassed
}

// judged says whether any SLA of the report was judged.
func (r *Report) judged() bool {
	for _, s := range r.SLAs {
		if !s.NotRun && s.NotEvaluated == "" {
			return true
		}
	}
	return false
}

// Outcome is an SLA's result as every format names it: PASS, FAIL, NOT
// RUN for one whose phase the run never reached, or NOT EVALUATED for one
// whose evidence the report was not made from.
func (s SLA) Outcome() string {
	switch {
	case s.NotRun:
		return "NOT RUN"
	case s.NotEvaluated != "":
		return "NOT EVALUATED"
	case s.Passed:
		return "PASS"
	}
	return "FAIL"
}

// notRunText says why an SLA was not checked.
func notRunText(s SLA) string {
	if s.During != "" {
		return "the run stopped before phase " + s.During
	}
	return "the run stopped before a phase it reads"
}
