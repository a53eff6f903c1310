package verify

// The AST is unexported: callers only need Expr, and keeping the node types
// private lets the language grow (function calls such as time_to(...),
// scraped selectors such as source:metric{label="v"}) without an API break.
// Each new construct is one more node type plus a case in the parser's
// prefix or infix step, the checker and the evaluator.

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

func (n *numberLit) span() (int, int) { return n.pos, n.end }
func (n *seriesRef) span() (int, int) { return n.pos, n.end }
func (n *parenExpr) span() (int, int) { return n.lparen, n.rparen + 1 }
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
