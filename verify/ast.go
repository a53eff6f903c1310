package verify

import "time"

// The AST is unexported: callers only need Expr, and keeping the node types
// private lets the language grow without an API break. Each construct is
// one node type plus a case in the parser's prefix or infix step and in the
// checker, which compiles the tree into the evaluator's form (compile.go).

// node is an expression node. Every node knows its source span in runes,
// so that checker errors can point at, and quote, exactly the operand at
// fault.
type node interface {
	span() (start, end int) // rune offsets, end exclusive
}

// numberLit is a number literal with its optional unit, already converted
// to canonical units.
type numberLit struct {
	pos, end int
	text     string
	value    float64
	unit     *unit // nil for a bare number
}

// seriesRef names a known series.
type seriesRef struct {
	pos, end int
	name     string
	kind     Kind
}

// parenExpr keeps parentheses in the tree so that spans, and therefore
// error columns and quoted operands, include them.
type parenExpr struct {
	lparen, rparen int // offsets of "(" and ")"
	x              node
}

// unaryExpr is -x or not x.
type unaryExpr struct {
	op     tokenKind // tokMinus or tokNot
	opPos  int
	opText string // as spelled: "!" or "not"
	x      node
}

// binaryExpr is x op y for every infix operator.
type binaryExpr struct {
	op     tokenKind
	opPos  int
	opText string // as spelled: "&&" or "and"
	x, y   node
}

// selectorExpr is a scraped selector, source:metric{matchers}.
type selectorExpr struct {
	pos, end   int
	sel        Selector
	matcherPos []int // offset of each matcher's label name
}

// stringLit is a double-quoted string: a function's name argument, a phase
// name or a state literal.
type stringLit struct {
	pos, end int
	value    string
}

// wordLit is an identifier that names no series, written beside == or !=.
// It is a state literal (breaker("x") == open) if the other side is a
// state; the checker rejects it as an unknown series otherwise.
type wordLit struct {
	pos, end int
	name     string
}

// callExpr is name(args, key: value).
type callExpr struct {
	pos            int // offset of the name
	name           string
	fn             *function
	lparen, rparen int
	args           []node
	named          []namedArg
}

// namedArg is key: value in a call. Only from (a phase) and hold (a
// duration) exist, so the value is one of those.
type namedArg struct {
	pos   int // offset of the key
	name  string
	phase *phaseName // from
	dur   *durationLit
}

// windowExpr is x during PHASE or x over DURATION.
type windowExpr struct {
	x     node
	kwPos int
	kw    string     // "during" or "over"
	phase *phaseName // during
	dur   *durationLit
}

// phaseName is the phase after during or from:, an identifier or a string.
type phaseName struct {
	pos, end int
	name     string
}

// durationLit is the literal duration after over or hold:.
type durationLit struct {
	pos, end int
	text     string
	d        time.Duration
}

func (n *numberLit) span() (int, int)    { return n.pos, n.end }
func (n *seriesRef) span() (int, int)    { return n.pos, n.end }
func (n *selectorExpr) span() (int, int) { return n.pos, n.end }
func (n *stringLit) span() (int, int)    { return n.pos, n.end }
func (n *wordLit) span() (int, int)      { return n.pos, n.end }
func (n *callExpr) span() (int, int)     { return n.pos, n.rparen + 1 }
func (n *parenExpr) span() (int, int)    { return n.lparen, n.rparen + 1 }
func (n *windowExpr) span() (int, int) {
	if n.phase != nil {
		return start(n.x), n.phase.end
	}
	return start(n.x), n.dur.end
}
func (n *unaryExpr) span() (int, int) { _, end := n.x.span(); return n.opPos, end }
func (n *binaryExpr) span() (int, int) {
	start, _ := n.x.span()
	_, end := n.y.span()
	return start, end
}

// start returns the offset of a node's first rune.
func start(n node) int {
	s, _ := n.span()
	return s
}

// unparen strips any parentheses around n.
func unparen(n node) node {
	for {
		p, ok := n.(*parenExpr)
		if !ok {
			return n
		}
		n = p.x
	}
}
