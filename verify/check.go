package verify

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// typ is the static type of an expression node. It refines Kind with the
// types no measured value has: conditions, states, and the text of a state
// literal; a plain number (a bare literal, the quotient of two latencies, a
// scraped gauge without a unit suffix) is tyNumber.
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
	tyState // the state of a breaker, fault or other stateful thing
	tyText  // a string or unknown word: only a state literal
)

// typeOfKind maps a value's kind to its static type.
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
	case KindPlain:
		return tyNumber
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
	case tyState:
		return "a state"
	}
	return "an invalid value"
}

// exampleCondition is offered wherever a condition was required.
const exampleCondition = "such as p99 < 150ms"

// checker type-checks a parsed tree and compiles it into e. It needs the
// source to quote operands in messages.
type checker struct {
	src       []rune
	e         *Expr
	leafIndex map[leafKey]int
	selIndex  map[string]int // Selector.String() → index into e.sels
	timings   map[string]int // calls of each timing function so far, for labels
	scope     int            // see leaf.scope
	scopes    int            // timing functions so far
	timing    *callExpr      // the timing function whose condition is being checked
	tm        *timingSpec    // and its compiled form
}

// check returns n's type and compiled form, or the first (leftmost,
// innermost) type error.
func (c *checker) check(n node) (typ, *enode, error) {
	switch n := n.(type) {
	case *numberLit:
		t := tyNumber
		if n.unit != nil {
			t = n.unit.typ
		}
		return t, &enode{op: eConst, v: n.value}, nil
	case *stringLit:
		return tyText, &enode{op: eText, s: n.value}, nil
	case *wordLit:
		return tyText, &enode{op: eText, s: n.name}, nil
	case *seriesRef:
		return c.loadLeaf(n, window{})
	case *selectorExpr:
		return c.selectorLeaf(n, window{})
	case *callExpr:
		return c.call(n, nil)
	case *windowExpr:
		return c.windowed(n)
	case *parenExpr:
		return c.check(n.x)
	case *unaryExpr:
		return c.unary(n)
	case *binaryExpr:
		return c.binary(n)
	}
	panic(fmt.Sprintf("verify: unexpected node %T", n))
}

func (c *checker) unary(n *unaryExpr) (typ, *enode, error) {
	t, x, err := c.check(n.x)
	if err != nil {
		return tyInvalid, nil, err
	}
	if n.op == tokNot {
		if t != tyBool {
			return tyInvalid, nil, errAt(start(n.x), "expected a condition after %q, %s", n.opText, exampleCondition)
		}
		return tyBool, &enode{op: eNot, x: x}, nil
	}
	if t == tyBool {
		return tyInvalid, nil, errAt(start(n.x), "cannot negate a condition")
	}
	if err := c.number(n.x, t, n.opText); err != nil {
		return tyInvalid, nil, err
	}
	return t, &enode{op: eNeg, x: x}, nil
}

// binaryOps maps infix tokens to compiled operations.
var binaryOps = map[tokenKind]eop{
	tokOr: eOr, tokAnd: eAnd,
	tokLT: eLT, tokLE: eLE, tokGT: eGT, tokGE: eGE, tokEQ: eEQ, tokNE: eNE,
	tokPlus: eAdd, tokMinus: eSub, tokStar: eMul, tokSlash: eDiv,
}

func (c *checker) binary(n *binaryExpr) (typ, *enode, error) {
	lt, x, err := c.check(n.x)
	if err != nil {
		return tyInvalid, nil, err
	}
	rt, y, err := c.check(n.y)
	if err != nil {
		return tyInvalid, nil, err
	}
	out := &enode{op: binaryOps[n.op], x: x, y: y}

	if n.op == tokAnd || n.op == tokOr {
		for _, side := range []struct {
			n node
			t typ
		}{{n.x, lt}, {n.y, rt}} {
			if side.t != tyBool {
				return tyInvalid, nil, errAt(start(side.n), "expected a condition on each side of %q, %s", n.opText, exampleCondition)
			}
		}
		return tyBool, out, nil
	}

	isCompare := infixPrec(n.op) == precCompare
	if isCompare && (lt == tyState || rt == tyState || lt == tyText || rt == tyText) {
		return c.stateCompare(n, lt, rt, x, y)
	}

	// Everything else works on numbers.
	if err := c.number(n.x, lt, n.opText); err != nil {
		return tyInvalid, nil, err
	}
	if err := c.number(n.y, rt, n.opText); err != nil {
		return tyInvalid, nil, err
	}

	switch n.op {
	case tokPlus, tokMinus:
		t, err := c.unify(n, lt, rt)
		return t, out, err
	case tokStar:
		// Scaling by a plain number keeps the kind (2 * p50); so does
		// scaling by a ratio, which is a fraction (error_rate * requests
		// is a count).
		switch {
		case lt == tyNumber:
			return rt, out, nil
		case rt == tyNumber:
			return lt, out, nil
		case lt == tyRatio:
			return rt, out, nil
		case rt == tyRatio:
			return lt, out, nil
		}
		return tyInvalid, nil, c.mismatch(n, lt, rt)
	case tokSlash:
		switch {
		case rt == tyNumber:
			return lt, out, nil
		case lt == rt:
			return tyNumber, out, nil // p99 / p50 is a plain factor
		}
		return tyInvalid, nil, c.mismatch(n, lt, rt)
	default: // comparisons
		if err := c.ratioAgainstNumber(n, lt, rt); err != nil {
			return tyInvalid, nil, err
		}
		if _, err := c.unify(n, lt, rt); err != nil {
			return tyInvalid, nil, err
		}
		return tyBool, out, nil
	}
}

// number rejects an operand of an arithmetic operator or of an ordering
// comparison that is not a number.
func (c *checker) number(n node, t typ, op string) error {
	switch t {
	case tyBool:
		return errAt(start(n), "%q needs a number on each side, not a condition", op)
	case tyState:
		return errAt(start(n), "%s is a state; compare it with == or != and a state name, e.g. %s", c.text(n), c.stateExample(n))
	case tyText:
		return c.textError(n)
	}
	return nil
}

// stateCompare checks a comparison with a state or a state literal on
// either side: only state == literal and state != literal are allowed, and
// the literal must be one of the state's values.
func (c *checker) stateCompare(n *binaryExpr, lt, rt typ, x, y *enode) (typ, *enode, error) {
	state, lit, litNode, stateNode := x, y, n.y, n.x
	if lt != tyState {
		state, lit, litNode, stateNode = y, x, n.x, n.y
	}
	switch {
	case lt != tyState && rt != tyState: // text beside something else
		if lt == tyText {
			return tyInvalid, nil, c.textError(n.x)
		}
		return tyInvalid, nil, c.textError(n.y)
	case n.op != tokEQ && n.op != tokNE:
		return tyInvalid, nil, errAt(n.opPos, "a state is compared with == or !=, not %q", n.opText)
	case lt == tyState && rt == tyState:
		return tyInvalid, nil, errAt(start(n.y), "compare %s with a state name, e.g. %s, not with another state", c.text(n.x), c.stateExample(n.x))
	case lit.op != eText:
		return tyInvalid, nil, errAt(start(litNode), "%s is a state; compare it with a state name, e.g. %s", c.text(stateNode), c.stateExample(stateNode))
	}
	l := c.e.leaves[state.leaf]
	if lit.s == "" {
		return tyInvalid, nil, errAt(start(litNode), "empty state name")
	}
	if values := l.fn.states; values != nil && !slices.Contains(values, lit.s) {
		if s, ok := suggest(lit.s, values); ok {
			return tyInvalid, nil, errAt(start(litNode), "unknown %s state %q (did you mean %q?)", l.fn.name, lit.s, s)
		}
		return tyInvalid, nil, errAt(start(litNode), "unknown %s state %q; %s states are %s", l.fn.name, lit.s, l.fn.name, strings.Join(values, ", "))
	}
	op := eStateEQ
	if n.op == tokNE {
		op = eStateNE
	}
	return tyBool, &enode{op: op, x: state, s: lit.s}, nil
}

// stateExample is an example comparison for the state n.
func (c *checker) stateExample(n node) string {
	value := `"ready"`
	if call, ok := unparen(n).(*callExpr); ok && call.fn.states != nil {
		value = call.fn.states[0]
	}
	return c.text(n) + " == " + value
}

// textError reports a string or unknown word used where it names no
// state.
func (c *checker) textError(n node) error {
	if w, ok := unparen(n).(*wordLit); ok {
		return unknownIdent(token{pos: w.pos, text: w.name})
	}
	return errAt(start(n), `a quoted string names a state, as in breaker("payments") == "open"`)
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

// ratioAgainstNumber catches "success_rate >= 99": a measured ratio
// compared with a bare number above 1 can never be true (or never false),
// and is almost certainly a missing %.
func (c *checker) ratioAgainstNumber(n *binaryExpr, lt, rt typ) error {
	for _, pair := range []struct {
		measured, other node
		t               typ
	}{{n.x, n.y, lt}, {n.y, n.x, rt}} {
		if pair.t != tyRatio || !isMeasured(pair.measured) {
			continue
		}
		lit, ok := unparen(pair.other).(*numberLit)
		if !ok || lit.unit != nil || lit.value <= 1 {
			continue
		}
		return errAt(start(pair.other), "%s is a ratio; write %s%% or %s",
			c.text(unparen(pair.measured)), lit.text, strconv.FormatFloat(lit.value/100, 'g', -1, 64))
	}
	return nil
}

// isMeasured reports whether n reads a value from the run, rather than
// computing one.
func isMeasured(n node) bool {
	switch unparen(n).(type) {
	case *seriesRef, *selectorExpr, *callExpr, *windowExpr:
		return true
	}
	return false
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

// noun describes node n of type t; a duration load series is called a
// latency, which is what every one of them measures.
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
