package verify

import (
	"fmt"
	"math"
	"strconv"
	"unicode"
)

// tokenKind identifies the lexical class of a token.
type tokenKind int

const (
	tokEOF tokenKind = iota
	tokNumber
	tokIdent
	tokLParen
	tokRParen
	tokOr  // or, ||
	tokAnd // and, &&
	tokNot // not, !
	tokLT  // <
	tokLE  // <=
	tokGT  // >
	tokGE  // >=
	tokEQ  // ==
	tokNE  // !=
	tokPlus
	tokMinus
	tokStar
	tokSlash
	tokString   // "…", with \" and \\ escapes
	tokColon    // : (named arguments)
	tokComma    // ,
	tokLBrace   // {
	tokRBrace   // }
	tokAssign   // = (label matchers)
	tokMatch    // =~
	tokNotMatch // !~
	tokDuring   // during
	tokOver     // over
)

// keywords maps the word spellings of the logical operators. They are
// case-sensitive: "AND" lexes as an identifier, which the parser then
// rejects with a hint.
var keywords = map[string]tokenKind{
	"and":    tokAnd,
	"or":     tokOr,
	"not":    tokNot,
	"during": tokDuring,
	"over":   tokOver,
}

// keywordNames is the candidate list for keyword suggestions.
var keywordNames = []string{"and", "or", "not", "during", "over"}

// token is one lexeme. Positions are rune offsets into the source, so that
// columns in messages match what an editor shows.
type token struct {
	kind  tokenKind
	pos   int    // offset of the first rune
	end   int    // offset just past the last rune
	text  string // the source text of the token
	str   string // tokString only: the value, escapes resolved
	value float64
	unit  *unit // tokNumber only: the attached unit, or nil for a bare number
}

// unit is a suffix attached to a number literal. Its value is applied in two
// exact steps: shift moves the decimal exponent before the literal is
// converted to binary, so 150ms is exactly the float64 nearest 0.15 and
// 99.9% exactly the one nearest 0.999 (which makes == on literals behave as
// users expect); scale then multiplies by a non-decimal factor (m = 60).
type unit struct {
	name  string
	typ   typ
	shift int
	scale float64
}

// units maps every accepted suffix spelling to its unit.
var units = func() map[string]*unit {
	list := []unit{
		{"ns", tyDuration, -9, 1},
		{"us", tyDuration, -6, 1},
		{"µs", tyDuration, -6, 1}, // U+00B5 MICRO SIGN
		{"μs", tyDuration, -6, 1}, // U+03BC GREEK SMALL LETTER MU
		{"ms", tyDuration, -3, 1},
		{"s", tyDuration, 0, 1},
		{"m", tyDuration, 0, 60},
		{"h", tyDuration, 0, 3600},
		{"%", tyRatio, -2, 1},
		{"/s", tyRate, 0, 1},
		{"KB", tyBytes, 3, 1},
		{"MB", tyBytes, 6, 1},
		{"GB", tyBytes, 9, 1},
		{"KiB", tyBytes, 0, 1 << 10},
		{"MiB", tyBytes, 0, 1 << 20},
		{"GiB", tyBytes, 0, 1 << 30},
	}
	m := make(map[string]*unit, len(list))
	for i := range list {
		m[list[i].name] = &list[i]
	}
	return m
}()

// twoRuneOps and oneRuneOps are the operator and punctuation spellings;
// the lexer tries the two-rune ones first so "<=" is not read as "<".
var twoRuneOps = map[[2]rune]tokenKind{
	{'<', '='}: tokLE, {'>', '='}: tokGE, {'=', '='}: tokEQ, {'!', '='}: tokNE,
	{'&', '&'}: tokAnd, {'|', '|'}: tokOr, {'=', '~'}: tokMatch, {'!', '~'}: tokNotMatch,
}

var oneRuneOps = map[rune]tokenKind{
	'(': tokLParen, ')': tokRParen, '<': tokLT, '>': tokGT, '!': tokNot,
	'+': tokPlus, '-': tokMinus, '*': tokStar, '/': tokSlash,
	'{': tokLBrace, '}': tokRBrace, ',': tokComma, ':': tokColon, '=': tokAssign,
}

// unitList is the units offered in the unknown-unit message: the common
// ones, not every accepted spelling.
const unitList = "ns, us, ms, s, m, h, %, /s, KiB, MiB, GiB"

// maxExponent bounds a literal's written exponent; anything beyond it is
// far outside float64 anyway and would only risk integer overflow.
const maxExponent = 1000

// lexer produces tokens on demand, so that the parser reports the leftmost
// problem: a bad character late in the source does not mask an earlier
// syntax error.
type lexer struct {
	src []rune
	pos int
}

// at returns the rune at offset i, or 0 past the end.
func (l *lexer) at(i int) rune {
	if i < len(l.src) {
		return l.src[i]
	}
	return 0
}

// next scans the next token. Errors are *SyntaxError.
func (l *lexer) next() (token, error) {
	for l.pos < len(l.src) && unicode.IsSpace(l.src[l.pos]) {
		l.pos++
	}
	start := l.pos
	if start >= len(l.src) {
		return token{kind: tokEOF, pos: start, end: start}, nil
	}
	r := l.src[start]
	switch {
	case isDigit(r) || (r == '.' && isDigit(l.at(start+1))):
		return l.number()
	case r == '"':
		return l.string()
	case isIdentStart(r):
		for l.pos < len(l.src) && isIdentPart(l.src[l.pos]) {
			l.pos++
		}
		text := string(l.src[start:l.pos])
		kind := tokIdent
		if k, ok := keywords[text]; ok {
			kind = k
		}
		return token{kind: kind, pos: start, end: l.pos, text: text}, nil
	}

	// Operators and punctuation: two-rune spellings take precedence.
	if k, ok := twoRuneOps[[2]rune{r, l.at(start + 1)}]; ok {
		l.pos += 2
		return token{kind: k, pos: start, end: l.pos, text: string(l.src[start:l.pos])}, nil
	}
	if k, ok := oneRuneOps[r]; ok {
		l.pos++
		return token{kind: k, pos: start, end: l.pos, text: string(r)}, nil
	}

	msg := fmt.Sprintf("unexpected character %q", string(r))
	switch r {
	case '&':
		msg += ` (did you mean "&&" or "and"?)`
	case '|':
		msg += ` (did you mean "||" or "or"?)`
	case '%':
		msg += "; a unit must follow its number directly, e.g. 99.9%"
	}
	return token{}, errAt(start, "%s", msg)
}

// number scans a literal: digits, an optional fraction, an optional
// exponent, and an optional unit suffix attached directly.
func (l *lexer) number() (token, error) {
	start := l.pos
	l.digits()
	if l.at(l.pos) == '.' && isDigit(l.at(l.pos+1)) {
		l.pos++
		l.digits()
	}
	mantissa := string(l.src[start:l.pos])

	// An exponent needs a digit after the e (and optional sign); otherwise
	// the e is left to be read as a unit, and rejected as an unknown one.
	exp := 0
	if r := l.at(l.pos); r == 'e' || r == 'E' {
		j := l.pos + 1
		if s := l.at(j); s == '+' || s == '-' {
			j++
		}
		if isDigit(l.at(j)) {
			expStart := l.pos + 1
			l.pos = j
			l.digits()
			e, err := strconv.Atoi(string(l.src[expStart:l.pos]))
			if err != nil || e > maxExponent || e < -maxExponent {
				return token{}, errAt(start, "number %q is out of range", string(l.src[start:l.pos]))
			}
			exp = e
		}
	}

	var u *unit
	switch r := l.at(l.pos); {
	case r == '%':
		l.pos++
		u = units["%"]
	case r == '/' && l.at(l.pos+1) == 's' && !isIdentPart(l.at(l.pos+2)):
		// "/s" directly after a number is a rate; "100/success_rate" is
		// still a division.
		l.pos += 2
		u = units["/s"]
	case isIdentStart(r):
		unitStart := l.pos
		for l.pos < len(l.src) && isIdentPart(l.src[l.pos]) {
			l.pos++
		}
		name := string(l.src[unitStart:l.pos])
		var ok bool
		if u, ok = units[name]; !ok {
			return token{}, errAt(unitStart, "unknown unit %q; use %s", name, unitList)
		}
	}

	shift, scale := 0, 1.0
	if u != nil {
		shift, scale = u.shift, u.scale
	}
	text := string(l.src[start:l.pos])
	v, err := strconv.ParseFloat(mantissa+"e"+strconv.Itoa(exp+shift), 64)
	v *= scale
	if err != nil || math.IsInf(v, 0) {
		return token{}, errAt(start, "number %q is out of range", text)
	}
	return token{kind: tokNumber, pos: start, end: l.pos, text: text, value: v, unit: u}, nil
}

// string scans a double-quoted string. Only \" and \\ are escapes, so a
// regular expression's backslashes must be doubled, as in PromQL: "a\\.b".
func (l *lexer) string() (token, error) {
	start := l.pos
	l.pos++
	var val []rune
	for {
		if l.pos >= len(l.src) {
			return token{}, errAt(start, "unterminated string")
		}
		r := l.src[l.pos]
		switch r {
		case '"':
			l.pos++
			return token{kind: tokString, pos: start, end: l.pos, text: string(l.src[start:l.pos]), str: string(val)}, nil
		case '\\':
			next := l.at(l.pos + 1)
			if next != '"' && next != '\\' {
				return token{}, errAt(l.pos, `unknown escape in string; only \" and \\ are escapes (write \\ for a backslash)`)
			}
			val = append(val, next)
			l.pos += 2
		default:
			val = append(val, r)
			l.pos++
		}
	}
}

func (l *lexer) digits() {
	for l.pos < len(l.src) && isDigit(l.src[l.pos]) {
		l.pos++
	}
}

func isDigit(r rune) bool { return '0' <= r && r <= '9' }

func isIdentStart(r rune) bool { return r == '_' || unicode.IsLetter(r) }

func isIdentPart(r rune) bool { return isIdentStart(r) || unicode.IsDigit(r) }
