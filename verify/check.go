package verify

import (
	"fmt"
	"strconv"
)

// typ is the static type of an expression node. It refines Kind with the
// two types no series has: conditions, and plain (dimensionless) numbers
// such as bare literals or the quotient of two latencies.
type typ int

const (
	tyInvalid typ = iota
	tyBool
	tyNumber
	tyRatio
	tyDuration
	tyCount
	tyRate
	tyBytes
)

// typeOfKind maps a series kind to its static type.
func typeOfKind(k Kind) typ {
	switch k {
	case KindRatio:
		return tyRatio
	case KindDuration:
		return tyDuration
	case KindCount:
		return tyCount
	case KindRate:
		return tyRate
	case KindBytes:
		return tyBytes
	}
	return tyInvalid
}

// needsUnit reports whether a bare number is too ambiguous to stand beside
// a value of this type: "p99 < 150" could mean 150ms or 150s, while
// "requests > 1000" or "success_rate > 0.99" can only mean one thing.
func (t typ) needsUnit() bool { return t == tyDuration || t == tyBytes }

// noun describes a value of type t for messages: "a duration".
func (t typ) noun() string {
	switch t {
	case tyBool:
		return "a condition"
	case tyNumber:
		return "a plain number"
	case tyRatio:
		return "a ratio"
	case tyDuration:
		return "a duration"
	case tyCount:
		return "a count"
	case tyRate:
		return "a rate"
	case tyBytes:
		return "a size"
	}
	return "an invalid value"
}

// exampleCondition is offered wherever a condition was required.
const exampleCondition = "such as p99 < 150ms"

// checker type-checks a parsed tree. It needs the source to quote operands
// in messages.
type checker struct {
	src []rune
}

// checkRoot checks n and requires the whole expression to be a condition:
// an SLA that is just "p99" has no pass/fail meaning.
func (c *checker) checkRoot(n node) error {
	t, err := c.check(n)
	if err != nil {
		return err
	}
	if t != tyBool {
		return errAt(start(n), "expression must be a condition, %s", exampleCondition)
	}
	return nil
}

// check returns n's type, or the first (leftmost, innermost) type error.
func (c *checker) check(n node) (typ, error) {
	switch n := n.(type) {
	case *numberLit:
		if n.unit == nil {
			return tyNumber, nil
		}
		return n.unit.typ, nil
	case *seriesRef:
		return typeOfKind(n.kind), nil
	case *parenExpr:
		return c.check(n.x)
	case *unaryExpr:
		return c.unary(n)
	case *binaryExpr:
		return c.binary(n)
	}
	panic(fmt.Sprintf("verify: unexpected node %T", n))
}

func (c *checker) unary(n *unaryExpr) (typ, error) {
	t, err := c.check(n.x)
	if err != nil {
		return tyInvalid, err
	}
	if n.op == tokNot {
		if t != tyBool {
			return tyInvalid, errAt(start(n.x), "expected a condition after %q, %s", n.opText, exampleCondition)
		}
		return tyBool, nil
	}
	if t == tyBool {
		return tyInvalid, errAt(start(n.x), "cannot negate a condition")
	}
	return t, nil
}

func (c *checker) binary(n *binaryExpr) (typ, error) {
	lt, err := c.check(n.x)
	if err != nil {
		return tyInvalid, err
	}
	rt, err := c.check(n.y)
	if err != nil {
		return tyInvalid, err
	}

	if n.op == tokAnd || n.op == tokOr {
		for _, side := range []struct {
			n node
			t typ
		}{{n.x, lt}, {n.y, rt}} {
			if side.t != tyBool {
				return tyInvalid, errAt(start(side.n), "expected a condition on each side of %q, %s", n.opText, exampleCondition)
			}
		}
		return tyBool, nil
	}

	// Everything else works on numbers.
	if lt == tyBool {
		return tyInvalid, errAt(start(n.x), "%q needs a number on each side, not a condition", n.opText)
	}
	if rt == tyBool {
		return tyInvalid, errAt(start(n.y), "%q needs a number on each side, not a condition", n.opText)
	}

	switch n.op {
	case tokPlus, tokMinus:
		return c.unify(n, lt, rt)
	case tokStar:
		// Scaling by a plain number keeps the kind (2 * p50); so does
		// scaling by a ratio, which is a fraction (error_rate * requests
		// is a count).
		switch {
		case lt == tyNumber:
			return rt, nil
		case rt == tyNumber:
			return lt, nil
		case lt == tyRatio:
			return rt, nil
		case rt == tyRatio:
			return lt, nil
		}
		return tyInvalid, c.mismatch(n, lt, rt)
	case tokSlash:
		switch {
		case rt == tyNumber:
			return lt, nil
		case lt == rt:
			return tyNumber, nil // p99 / p50 is a plain factor
		}
		return tyInvalid, c.mismatch(n, lt, rt)
	default: // comparisons
		if err := c.ratioAgainstNumber(n); err != nil {
			return tyInvalid, err
		}
		if _, err := c.unify(n, lt, rt); err != nil {
			return tyInvalid, err
		}
		return tyBool, nil
	}
}

// unify returns the common type of two operands that must agree (+, -,
// comparisons). A bare number adopts the other side's type unless that type
// needs an explicit unit.
func (c *checker) unify(n *binaryExpr, lt, rt typ) (typ, error) {
	switch {
	case lt == rt:
		return lt, nil
	case lt == tyNumber && !rt.needsUnit():
		return rt, nil
	case rt == tyNumber && !lt.needsUnit():
		return lt, nil
	case lt == tyNumber && isBareLiteral(n.x):
		return tyInvalid, c.needUnit(n.x, n.y, rt)
	case rt == tyNumber && isBareLiteral(n.y):
		return tyInvalid, c.needUnit(n.y, n.x, lt)
	}
	return tyInvalid, c.mismatch(n, lt, rt)
}

// needUnit reports a bare number beside a duration or size, suggesting the
// unit: "p99 is a latency; give a unit, e.g. 150ms".
func (c *checker) needUnit(bare, other node, t typ) error {
	lit := unparen(bare)
	for {
		u, ok := lit.(*unaryExpr)
		if !ok {
			break
		}
		lit = unparen(u.x)
	}
	example := "150ms"
	if t == tyBytes {
		example = "512MiB"
	}
	if l, ok := lit.(*numberLit); ok {
		switch {
		case t == tyBytes:
			example = l.text + "MiB"
		case l.value < 10:
			example = l.text + "s"
		default:
			example = l.text + "ms"
		}
	}
	return errAt(start(bare), "%s is %s; give a unit, e.g. %s", c.text(other), c.noun(other, t), example)
}

// ratioAgainstNumber catches "success_rate >= 99": a ratio series compared
// with a bare number above 1 can never be true (or never false), and is
// almost certainly a missing %.
func (c *checker) ratioAgainstNumber(n *binaryExpr) error {
	for _, pair := range [][2]node{{n.x, n.y}, {n.y, n.x}} {
		s, ok := unparen(pair[0]).(*seriesRef)
		if !ok || s.kind != KindRatio {
			continue
		}
		lit, ok := unparen(pair[1]).(*numberLit)
		if !ok || lit.unit != nil || lit.value <= 1 {
			continue
		}
		return errAt(start(pair[1]), "%s is a ratio; write %s%% or %s",
			s.name, lit.text, strconv.FormatFloat(lit.value/100, 'g', -1, 64))
	}
	return nil
}

// mismatch reports two operands whose kinds cannot be combined by n's
// operator. It points at the right operand, the usual place of the mistake
// ("p99 < 99%").
func (c *checker) mismatch(n *binaryExpr, lt, rt typ) error {
	l := fmt.Sprintf("%s (%s)", c.text(n.x), c.noun(n.x, lt))
	r := fmt.Sprintf("%s (%s)", c.text(n.y), c.noun(n.y, rt))
	var msg string
	switch n.op {
	case tokPlus:
		msg = fmt.Sprintf("cannot add %s and %s", l, r)
	case tokMinus:
		msg = fmt.Sprintf("cannot subtract %s from %s", r, l)
	case tokStar:
		msg = fmt.Sprintf("cannot multiply %s by %s", l, r)
	case tokSlash:
		msg = fmt.Sprintf("cannot divide %s by %s", l, r)
	default:
		msg = fmt.Sprintf("cannot compare %s with %s", l, r)
	}
	return errAt(start(n.y), "%s", msg)
}

// noun describes node n of type t; a duration series is called a latency,
// which is what every duration series measures today.
func (c *checker) noun(n node, t typ) string {
	if s, ok := unparen(n).(*seriesRef); ok && t == tyDuration && s.kind == KindDuration {
		return "a latency"
	}
	return t.noun()
}

// text returns n's source text, for quoting it in messages.
func (c *checker) text(n node) string {
	s, e := n.span()
	return string(c.src[s:e])
}

// isBareLiteral reports whether n is a unitless number literal, possibly
// negated or parenthesised: the only operand that needUnit can blame.
func isBareLiteral(n node) bool {
	switch n := unparen(n).(type) {
	case *numberLit:
		return n.unit == nil
	case *unaryExpr:
		return n.op == tokMinus && isBareLiteral(n.x)
	}
	return false
}
