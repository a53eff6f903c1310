package guard

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
)

// FailureConfig says which outcomes count as failures. HTTP statuses are
// written as codes ("503") or classes ("5xx"); gRPC codes by name
// ("UNAVAILABLE", any case) or number.
type FailureConfig struct {
	// Status lists the HTTP statuses that are failures: codes ("503") or
	// classes ("5xx").
	Status []string `yaml:"status"`
	// GRPC lists the gRPC codes that are failures, by name ("UNAVAILABLE")
	// or number.
	GRPC []string `yaml:"grpc"`
	// Errors counts transport errors (the upstream could not be reached).
	Errors bool `yaml:"errors"`
	// Timeouts counts calls that ran out of time.
	Timeouts bool `yaml:"timeouts"`
}

// DefaultFailure is what breakers count as failure: server errors,
// gRPC's server-side failure codes, transport errors and timeouts. Client
// errors (4xx) are the caller's fault, not the upstream's.
func DefaultFailure() FailureConfig {
	return FailureConfig{
		Status:   []string{"5xx"},
		GRPC:     []string{"UNKNOWN", "DEADLINE_EXCEEDED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"},
		Errors:   true,
		Timeouts: true,
	}
}

// overloadFailure is what throttling and adaptive limits count as the
// upstream pushing back.
func overloadFailure() FailureConfig {
	return FailureConfig{
		Status:   []string{"429", "503"},
		GRPC:     []string{"RESOURCE_EXHAUSTED", "UNAVAILABLE"},
		Errors:   true,
		Timeouts: true,
	}
}

// Check reports unreadable statuses and codes.
func (f *FailureConfig) Check(problem func(field, msg string)) {
	for i, s := range f.Status {
		if _, _, err := parseStatus(s); err != nil {
			problem(fmt.Sprintf("status[%d]", i), err.Error())
		}
	}
	for i, s := range f.GRPC {
		if _, err := parseCode(s); err != nil {
			problem(fmt.Sprintf("grpc[%d]", i), err.Error())
		}
	}
}

func parseStatus(s string) (lo, hi int, err error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if len(t) == 3 && strings.HasSuffix(t, "xx") && t[0] >= '1' && t[0] <= '5' {
		c := int(t[0]-'0') * 100
		return c, c + 99, nil
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < 100 || n > 599 {
		return 0, 0, fmt.Errorf("%q is not an HTTP status (100..599) or class (1xx..5xx)", s)
	}
	return n, n, nil
}

func parseCode(s string) (codes.Code, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.Atoi(t); err == nil {
		if n < 0 || n > 16 {
			return 0, fmt.Errorf("%q is not a gRPC code (0..16)", s)
		}
		return codes.Code(n), nil
	}
	var c codes.Code
	if err := c.UnmarshalJSON([]byte(strconv.Quote(t))); err != nil {
		return 0, fmt.Errorf("%q is not a gRPC code name, e.g. UNAVAILABLE", s)
	}
	return c, nil
}

// verdict is how a policy should learn from an outcome.
type verdict uint8

const (
	success verdict = iota
	failure
	ignored // the caller went away, or the call never reached upstream
)

// classifier is a FailureConfig compiled for the hot path.
type classifier struct {
	status   *[640]verdict // per HTTP status, what an answer with it is
	grpc     uint32        // bit per code
	errors   bool
	timeouts bool
}

func newClassifier(f FailureConfig) classifier {
	c := classifier{status: new([640]verdict), errors: f.Errors, timeouts: f.Timeouts}
	for _, s := range f.Status {
		lo, hi, err := parseStatus(s)
		if err != nil {
			continue // Check reported it
		}
		for n := lo; n <= hi; n++ {
			c.status[n] = failure
		}
	}
	c.status[statusClientGone] = ignored
	for _, s := range f.GRPC {
		if code, err := parseCode(s); err == nil {
			c.grpc |= 1 << code
		}
	}
	return c
}

// statusClientGone is the status the harness writes when the client went
// away before the upstream answered (nginx's 499).
const statusClientGone = 499

func (c *classifier) classify(o *Outcome) verdict {
	if v, ok := c.answered(o); ok {
		return v
	}
	return c.classifyOther(o)
}

// answered is classify for the common case, an HTTP answer (its status's
// entry), and reports false for any other outcome. It is small enough to
// be inlined where classify would be a call.
func (c *classifier) answered(o *Outcome) (verdict, bool) {
	if n := uint(o.Status); n-1 < 639 && o.Err == nil && !o.Timeout && !o.Skipped {
		return c.status[n], true
	}
	return success, false
}

// classifyOther is classify for every outcome but an HTTP answer's.
func (c *classifier) classifyOther(o *Outcome) verdict {
	if o.Skipped {
		return ignored
	}
	if o.Err != nil {
		if errors.Is(o.Err, context.Canceled) {
			return ignored
		}
		if errors.Is(o.Err, context.DeadlineExceeded) {
			return c.timeout()
		}
	}
	if o.Timeout {
		return c.timeout()
	}
	switch {
	case o.Status > 0:
		if o.Status < len(c.status) {
			if v := c.status[o.Status]; v != success {
				return v
			}
		}
	case o.GRPCCode != codes.OK:
		if o.GRPCCode == codes.Canceled {
			return ignored
		}
		if o.GRPCCode < 32 && c.grpc&(1<<o.GRPCCode) != 0 {
			return failure
		}
		return success
	}
	if o.Err != nil && c.errors {
		return failure
	}
	return success
}

func (c *classifier) timeout() verdict {
	if c.timeouts {
		return failure
	}
	return success
}
