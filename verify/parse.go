package verify

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"time"
	"unicode"
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

// Parse parses and checks an SLA expression: it must be syntactically valid,
// use only known series and functions, and be a well-typed condition.
// Checking everything up front means a bad SLA fails when a scenario is
// loaded, not at the end of a run. It returns *SyntaxError on failure,
// describing the first problem found: syntax (including unknown series and
// functions) is read left to right, and only a syntactically valid
// expression is type-checked. Whether phase, breaker and fault names exist
// is the scenario's business: see [Expr.CheckNames].
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
	return compile(src, p.lex.src, root, p.idents)
}

// Binding powers, lowest first. The parser is a Pratt parser: prefix
// constructs (literals, series, selectors, calls, parentheses, unary
// operators) are handled by parser.prefix, infix and postfix operators by
// the loop in parser.expr driven by infixPrec. New operators slot in by
// adding a level here and a case there.
const (
	precLowest  = iota
	precOr      // or ||
	precAnd     // and &&
	precNot     // not ! (prefix)
	precCompare // < <= > >= == != (non-associative)
	precSum     // + -
	precProduct // * /
	precUnary   // - (prefix)
	precWindow  // during, over (postfix, on the operand just before)
)

// infixPrec returns the binding power of k as an infix or postfix
// operator, or 0 if it is not one.
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
	case tokDuring, tokOver:
		return precWindow
	}
	return 0
}

// maxDepth bounds nesting so that a hostile or generated expression cannot
// exhaust the stack; real SLAs nest a handful of levels.
const maxDepth = 200

// expectOperand is the tail of messages where an operand was required.
const expectOperand = `expected a number, series, selector, function or "("`

type parser struct {
	lex    lexer
	tok    token     // one token of lookahead
	prev   tokenKind // the kind of the token before tok
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
	p.prev = p.tok.kind
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
		if prec == precWindow {
			if left, err = p.window(left); err != nil {
				return nil, err
			}
			continue
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

// prefix parses an operand: a literal, a series, a selector, a call, a
// parenthesised expression or a unary operator applied to an operand.
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

	case tokString:
		if err := p.advance(); err != nil {
			return nil, err
		}
		return &stringLit{pos: t.pos, end: t.end, value: t.str}, nil

	case tokIdent:
		return p.ident()

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

// ident parses an operand that starts with an identifier: a selector
// (source:metric), a call, a load series or a state literal.
func (p *parser) ident() (node, error) {
	t := p.tok
	if p.lex.at(t.end) == ':' {
		return p.selector(t)
	}
	before := p.prev
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind == tokLParen {
		return p.call(t)
	}
	if kind, ok := Lookup(t.text); ok {
		if !p.seen[t.text] {
			p.seen[t.text] = true
			p.idents = append(p.idents, t.text)
		}
		return &seriesRef{pos: t.pos, end: t.end, name: t.text, kind: kind}, nil
	}
	// Perhaps a state, as in breaker("x") == open: the checker decides.
	// Only beside == and !=, so that elsewhere an unknown series is
	// reported here, before any later syntax error.
	isEq := func(k tokenKind) bool { return k == tokEQ || k == tokNE }
	if isEq(before) || isEq(p.tok.kind) {
		return &wordLit{pos: t.pos, end: t.end, name: t.text}, nil
	}
	if p.tok.kind == tokColon {
		return nil, errAt(t.pos, "a selector has no spaces around its colon: write %s:metric_name", t.text)
	}
	return nil, unknownIdent(t)
}

// selector parses source:metric{matchers}; src is the source identifier,
// which the parser has checked is directly followed by a colon. The metric
// name is scanned here rather than by the lexer because it may contain
// colons and must follow the colon directly.
func (p *parser) selector(src token) (node, error) {
	colon := src.end
	if !isMetricStart(p.lex.at(colon + 1)) {
		return nil, errAt(colon+1, "expected a metric name directly after %q, e.g. %s:go_goroutines", src.text+":", src.text)
	}
	end := colon + 1
	for isMetricPart(p.lex.at(end)) {
		end++
	}
	s := &selectorExpr{pos: src.pos, end: end, sel: Selector{Source: src.text, Metric: string(p.lex.src[colon+1 : end])}}
	p.lex.pos = end
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind != tokLBrace {
		return s, nil
	}
	lbrace := p.tok.pos
	if err := p.advance(); err != nil {
		return nil, err
	}
	for p.tok.kind != tokRBrace {
		if p.tok.kind == tokEOF {
			return nil, errAt(lbrace, "unclosed {")
		}
		s.matcherPos = append(s.matcherPos, p.tok.pos)
		m, err := p.matcher()
		if err != nil {
			return nil, err
		}
		s.sel.Matchers = append(s.sel.Matchers, m)
		switch p.tok.kind {
		case tokComma:
			if err := p.advance(); err != nil {
				return nil, err
			}
		case tokRBrace:
		case tokEOF:
			return nil, errAt(lbrace, "unclosed {")
		default:
			return nil, errAt(p.tok.pos, `unexpected %q, expected "," or "}"`, p.tok.text)
		}
	}
	s.end = p.tok.end
	return s, p.advance()
}

// matcher parses one label matcher, label op "value", and records where it
// starts for later messages.
func (p *parser) matcher() (Matcher, error) {
	name := p.tok
	if !isLabelName(name.text) || (name.kind != tokIdent && keywords[name.text] == 0) {
		return Matcher{}, errAt(name.pos, `expected a label name, e.g. {job="api"}`)
	}
	if err := p.advance(); err != nil {
		return Matcher{}, err
	}
	op := p.tok
	switch op.kind {
	case tokAssign, tokNE, tokMatch, tokNotMatch:
	case tokEQ:
		return Matcher{}, errAt(op.pos, `labels are matched with "=", not "==": %s="…"`, name.text)
	default:
		return Matcher{}, errAt(op.pos, "expected =, !=, =~ or !~ after label %q", name.text)
	}
	if err := p.advance(); err != nil {
		return Matcher{}, err
	}
	v := p.tok
	if v.kind != tokString {
		if v.kind == tokIdent || v.kind == tokNumber {
			return Matcher{}, errAt(v.pos, "label values are quoted: %s%s%q", name.text, op.text, v.text)
		}
		return Matcher{}, errAt(v.pos, "expected a quoted label value after %q", name.text+op.text)
	}
	if op.kind == tokMatch || op.kind == tokNotMatch {
		if _, err := regexp.Compile(v.str); err != nil {
			msg := err.Error()
			var se *syntax.Error
			if errors.As(err, &se) {
				msg = fmt.Sprintf("%s: %q", se.Code, se.Expr)
			}
			return Matcher{}, errAt(v.pos, "invalid regular expression: %s", msg)
		}
	}
	if err := p.advance(); err != nil {
		return Matcher{}, err
	}
	return Matcher{Name: name.text, Op: op.text, Value: v.str}, nil
}

// call parses name(args, key: value); the current token is the "(".
func (p *parser) call(name token) (node, error) {
	fn, ok := functions[name.text]
	if !ok {
		return nil, unknownFunction(name)
	}
	c := &callExpr{pos: name.pos, name: name.text, fn: fn, lparen: p.tok.pos}
	if err := p.advance(); err != nil {
		return nil, err
	}
	for p.tok.kind != tokRParen {
		if len(c.args)+len(c.named) > 0 {
			switch p.tok.kind {
			case tokComma:
				if err := p.advance(); err != nil {
					return nil, err
				}
				if p.tok.kind == tokRParen { // a trailing comma
					continue
				}
			case tokEOF:
				return nil, errAt(c.lparen, "unclosed parenthesis")
			default:
				return nil, p.unexpectedAfterOperand(`"," or ")"`)
			}
		}
		if p.atNamedArg(fn) {
			a, err := p.namedArg(c)
			if err != nil {
				return nil, err
			}
			c.named = append(c.named, a)
			continue
		}
		if len(c.named) > 0 {
			return nil, errAt(p.tok.pos, "positional arguments come before named ones: %s", fn.usage)
		}
		if len(c.args) == fn.arity {
			return nil, errAt(p.tok.pos, "%s takes %s: %s", fn.name, fn.takes(), fn.usage)
		}
		if fn.class == fnState && p.tok.kind == tokIdent {
			return nil, errAt(p.tok.pos, "names are quoted: %s", fn.usage)
		}
		x, err := p.expr(precLowest)
		if err != nil {
			return nil, err
		}
		c.args = append(c.args, x)
	}
	c.rparen = p.tok.pos
	if len(c.args) < fn.arity {
		return nil, errAt(c.rparen, "%s needs %s: %s", fn.name, fn.takes(), fn.usage)
	}
	return c, p.advance()
}

// atNamedArg reports whether the current token starts key: value, or
// key=value for one of fn's argument names (hold=5s needs no quotes in a
// YAML file, where hold: 5s inside a plain value is a syntax error). An
// identifier directly followed by a colon and a metric name is a selector,
// unless the identifier is one of fn's argument names: in time_to(...,
// from:baseline) the from is the argument.
func (p *parser) atNamedArg(fn *function) bool {
	if p.tok.kind != tokIdent {
		return false
	}
	i := p.tok.end
	if p.lex.at(i) == ':' {
		return !isMetricStart(p.lex.at(i+1)) || slices.Contains(fn.named, p.tok.text)
	}
	for i < len(p.lex.src) && unicode.IsSpace(p.lex.src[i]) {
		i++
	}
	if p.lex.at(i) == '=' && p.lex.at(i+1) != '=' && slices.Contains(fn.named, p.tok.text) {
		return true
	}
	return p.lex.at(i) == ':'
}

// namedArg parses key: value for call c.
func (p *parser) namedArg(c *callExpr) (namedArg, error) {
	key := p.tok
	fn := c.fn
	if !slices.Contains(fn.named, key.text) {
		if len(fn.named) == 0 {
			return namedArg{}, errAt(key.pos, "%s takes no named arguments: %s", fn.name, fn.usage)
		}
		if s, ok := suggest(key.text, fn.named); ok {
			return namedArg{}, errAt(key.pos, "unknown argument %q for %s (did you mean %q?)", key.text, fn.name, s)
		}
		return namedArg{}, errAt(key.pos, "unknown argument %q for %s; it takes %s", key.text, fn.name, fn.namedList())
	}
	for _, a := range c.named {
		if a.name == key.text {
			return namedArg{}, errAt(key.pos, "%s is given twice", key.text)
		}
	}
	if err := p.advance(); err != nil { // the key
		return namedArg{}, err
	}
	if err := p.advance(); err != nil { // the colon or =
		return namedArg{}, err
	}
	a := namedArg{pos: key.pos, name: key.text}
	var err error
	switch key.text {
	case "from":
		a.phase, err = p.phase("from:", "from: fault")
	case "hold":
		a.dur, err = p.duration("hold must be a duration, e.g. hold: 5s", "")
	}
	return a, err
}

// window parses the postfix "during PHASE" or "over DURATION" after x.
func (p *parser) window(x node) (node, error) {
	kw := p.tok
	if err := p.advance(); err != nil {
		return nil, err
	}
	w := &windowExpr{x: x, kwPos: kw.pos, kw: kw.text}
	var err error
	if kw.kind == tokDuring {
		w.phase, err = p.phase("during", "during baseline")
	} else {
		w.dur, err = p.duration("over needs a duration, e.g. over 30s", "over needs a duration above zero")
	}
	return w, err
}

// phase parses a phase name, an identifier or a string, after the given
// keyword.
func (p *parser) phase(after, example string) (*phaseName, error) {
	t := p.tok
	switch t.kind {
	case tokIdent:
		// fault-injection lexes as fault - injection.
		if p.lex.at(t.end) == '-' && isIdentPart(p.lex.at(t.end+1)) {
			end := t.end + 1
			for isIdentPart(p.lex.at(end)) || (p.lex.at(end) == '-' && isIdentPart(p.lex.at(end+1))) {
				end++
			}
			return nil, errAt(t.pos, "quote a phase name that is not an identifier: %s %q", after, string(p.lex.src[t.pos:end]))
		}
	case tokString:
		if t.str == "" {
			return nil, errAt(t.pos, "empty phase name after %s", after)
		}
	default:
		return nil, errAt(t.pos, "expected a phase name after %s, e.g. %s", after, example)
	}
	name := t.text
	if t.kind == tokString {
		name = t.str
	}
	return &phaseName{pos: t.pos, end: t.end, name: name}, p.advance()
}

// duration parses the duration literal of over or hold, reporting msg if
// there is none, and zeroMsg if it is zero and zeroMsg is not empty.
func (p *parser) duration(msg, zeroMsg string) (*durationLit, error) {
	t := p.tok
	if t.kind != tokNumber || t.unit == nil || t.unit.typ != tyDuration {
		return nil, errAt(t.pos, "%s", msg)
	}
	if zeroMsg != "" && t.value == 0 {
		return nil, errAt(t.pos, "%s", zeroMsg)
	}
	ns := t.value * float64(time.Second)
	if ns >= math.MaxInt64 {
		return nil, errAt(t.pos, "duration %q is out of range", t.text)
	}
	return &durationLit{pos: t.pos, end: t.end, text: t.text, d: time.Duration(math.Round(ns))}, p.advance()
}

// unexpectedAfterOperand reports a token found where an infix operator or
// the given closer was expected, with a hint for near-miss keywords
// ("AND", "adn") and operators ("=").
func (p *parser) unexpectedAfterOperand(closer string) error {
	t := p.tok
	switch t.kind {
	case tokRParen:
		return errAt(t.pos, `unexpected ")" without matching "("`)
	case tokAssign:
		return errAt(t.pos, `unexpected "=", expected an operator or %s (did you mean "=="?)`, closer)
	case tokMatch, tokNotMatch:
		return errAt(t.pos, `unexpected %q: regular expressions match labels inside a selector's {…}`, t.text)
	case tokIdent:
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

// unknownFunction reports a call of a name that is no function.
func unknownFunction(t token) error {
	if _, ok := series[t.text]; ok {
		return errAt(t.pos, "%s is a load series, not a function", t.text)
	}
	if name, ok := suggest(t.text, functionNames); ok {
		return errAt(t.pos, "unknown function %q (did you mean %q?)", t.text, name)
	}
	return errAt(t.pos, "unknown function %q", t.text)
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
