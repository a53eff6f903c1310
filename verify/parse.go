package verify

import (
	"fmt"
	"slices"
	"strings"
)

// SyntaxError reports why an expression was rejected and where. Scenario
// loaders wrap it with the file and key it came from; Col lets them draw a
// caret under the offending token.
type SyntaxError struct {
	Col int    // 1-based column (in runes) in src where the problem is
	Msg string // lower-case, no trailing period
}

// Error returns "col N: msg".
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("col %d: %s", e.Col, e.Msg)
}

// errAt builds a *SyntaxError at rune offset pos.
func errAt(pos int, format string, args ...any) error {
	return &SyntaxError{Col: pos + 1, Msg: fmt.Sprintf(format, args...)}
}

// Expr is a parsed and type-checked SLA expression. It is immutable, so one
// Expr may be evaluated concurrently against many windows.
type Expr struct {
	src    string
	root   node
	idents []string // distinct series, in order of first appearance
}

// String returns the source exactly as given to Parse, so reports quote the
// SLA the way its author wrote it.
func (e *Expr) String() string { return e.src }

// Idents returns the distinct series identifiers the expression uses,
// sorted. Runners use it to know which series they must collect.
func (e *Expr) Idents() []string {
	names := slices.Clone(e.idents)
	slices.Sort(names)
	return names
}

// Parse parses and checks an SLA expression: it must be syntactically valid,
// use only known series, and be a well-typed condition. Checking everything
// up front means a bad SLA fails when a scenario is loaded, not at the end
// of a run. It returns *SyntaxError on failure, describing the first
// problem found: syntax (including unknown series) is read left to right,
// and only a syntactically valid expression is type-checked.
func Parse(src string) (*Expr, error) {
	p := &parser{lex: lexer{src: []rune(src)}, seen: map[string]bool{}}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind == tokEOF {
		return nil, errAt(0, "empty expression")
	}
	root, err := p.expr(precLowest)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokEOF {
		return nil, p.unexpectedAfterOperand("end of expression")
	}
	c := checker{src: p.lex.src}
	if err := c.checkRoot(root); err != nil {
		return nil, err
	}
	return &Expr{src: src, root: root, idents: p.idents}, nil
}

// Binding powers, lowest first. The parser is a Pratt parser: prefix
// constructs (literals, series, parentheses, unary operators) are handled by
// parser.prefix, infix operators by the loop in parser.expr driven by
// infixPrec. New operators slot in by adding a level here and a case there.
const (
	precLowest  = iota
	precOr      // or ||
	precAnd     // and &&
	precNot     // not ! (prefix)
	precCompare // < <= > >= == != (non-associative)
	precSum     // + -
	precProduct // * /
	precUnary   // - (prefix)
)

// infixPrec returns the binding power of k as an infix operator, or 0 if it
// is not one.
func infixPrec(k tokenKind) int {
	switch k {
	case tokOr:
		return precOr
	case tokAnd:
		return precAnd
	case tokLT, tokLE, tokGT, tokGE, tokEQ, tokNE:
		return precCompare
	case tokPlus, tokMinus:
		return precSum
	case tokStar, tokSlash:
		return precProduct
	}
	return 0
}

// maxDepth bounds nesting so that a hostile or generated expression cannot
// exhaust the stack; real SLAs nest a handful of levels.
const maxDepth = 200

// expectOperand is the tail of messages where an operand was required.
const expectOperand = `expected a number, series or "("`

type parser struct {
	lex    lexer
	tok    token // one token of lookahead
	depth  int
	idents []string
	seen   map[string]bool
}

// advance moves to the next token. Lexical errors surface here, when the
// parser reaches them, which keeps error reporting in source order.
func (p *parser) advance() error {
	t, err := p.lex.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

// expr parses an expression whose infix operators all bind tighter than or
// as tight as minPrec.
func (p *parser) expr(minPrec int) (node, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, errAt(p.tok.pos, "expression is nested too deeply")
	}

	left, err := p.prefix()
	if err != nil {
		return nil, err
	}
	for {
		prec := infixPrec(p.tok.kind)
		if prec == 0 || prec < minPrec {
			return left, nil
		}
		op := p.tok
		if err := p.advance(); err != nil {
			return nil, err
		}
		// prec+1 makes every binary operator left-associative; comparisons
		// are then refused a second time below.
		right, err := p.expr(prec + 1)
		if err != nil {
			return nil, err
		}
		left = &binaryExpr{op: op.kind, opPos: op.pos, opText: op.text, x: left, y: right}
		if prec == precCompare && infixPrec(p.tok.kind) == precCompare {
			return nil, errAt(p.tok.pos, "comparisons cannot be chained; combine them with and, e.g. p50 < 100ms and p99 < 300ms")
		}
	}
}

// prefix parses an operand: a literal, a series, a parenthesised
// expression or a unary operator applied to an operand.
func (p *parser) prefix() (node, error) {
	t := p.tok
	switch t.kind {
	case tokNumber:
		if err := p.advance(); err != nil {
			return nil, err
		}
		// "150 ms": the unit lexes as a separate word.
		if t.unit == nil && p.tok.kind == tokIdent && units[p.tok.text] != nil {
			return nil, errAt(p.tok.pos, "a unit must follow its number directly: write %q", t.text+p.tok.text)
		}
		return &numberLit{pos: t.pos, end: t.end, text: t.text, value: t.value, unit: t.unit}, nil

	case tokIdent:
		kind, ok := Lookup(t.text)
		if !ok {
			return nil, unknownIdent(t)
		}
		if !p.seen[t.text] {
			p.seen[t.text] = true
			p.idents = append(p.idents, t.text)
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		return &seriesRef{pos: t.pos, end: t.end, name: t.text, kind: kind}, nil

	case tokLParen:
		if err := p.advance(); err != nil {
			return nil, err
		}
		x, err := p.expr(precLowest)
		if err != nil {
			return nil, err
		}
		if p.tok.kind == tokEOF {
			return nil, errAt(t.pos, "unclosed parenthesis")
		}
		if p.tok.kind != tokRParen {
			return nil, p.unexpectedAfterOperand(`")"`)
		}
		rparen := p.tok.pos
		if err := p.advance(); err != nil {
			return nil, err
		}
		return &parenExpr{lparen: t.pos, rparen: rparen, x: x}, nil

	case tokMinus, tokNot:
		if err := p.advance(); err != nil {
			return nil, err
		}
		prec := precUnary
		if t.kind == tokNot {
			// not binds looser than comparisons: not p99 < 1s is
			// not (p99 < 1s).
			prec = precCompare
		}
		x, err := p.expr(prec)
		if err != nil {
			return nil, err
		}
		return &unaryExpr{op: t.kind, opPos: t.pos, opText: t.text, x: x}, nil

	case tokEOF:
		return nil, errAt(t.pos, "unexpected end of expression, %s", expectOperand)
	}
	return nil, errAt(t.pos, "unexpected %q, %s", t.text, expectOperand)
}

// unexpectedAfterOperand reports a token found where an infix operator or
// the given closer was expected, with a hint for near-miss keywords
// ("AND", "adn").
func (p *parser) unexpectedAfterOperand(closer string) error {
	t := p.tok
	if t.kind == tokRParen {
		return errAt(t.pos, `unexpected ")" without matching "("`)
	}
	if t.kind == tokIdent {
		if err := keywordCase(t); err != nil {
			return err
		}
		if kw, ok := suggest(t.text, keywordNames); ok {
			return errAt(t.pos, "unexpected %q, expected an operator or %s (did you mean %q?)", t.text, closer, kw)
		}
	}
	return errAt(t.pos, "unexpected %q, expected an operator or %s", t.text, closer)
}

// unknownIdent reports an identifier that names no series.
func unknownIdent(t token) error {
	if err := keywordCase(t); err != nil {
		return err
	}
	if name, ok := suggest(t.text, seriesNames); ok {
		return errAt(t.pos, "unknown series %q (did you mean %q?)", t.text, name)
	}
	return errAt(t.pos, "unknown series %q", t.text)
}

// keywordCase reports an upper- or mixed-case spelling of a keyword, which
// would otherwise surface as a baffling unknown series.
func keywordCase(t token) error {
	lower := strings.ToLower(t.text)
	if _, ok := keywords[lower]; ok {
		return errAt(t.pos, "keywords are lower case: write %q", lower)
	}
	return nil
}
