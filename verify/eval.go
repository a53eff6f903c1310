package verify

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Env supplies the canonical value of a series identifier for the window
// being checked. Keeping it an interface lets the runner back it with live
// histograms and tests with a map.
type Env interface {
	// Value returns the series' value in canonical units. ok is false when
	// there is no data, for instance p99 of a window with zero requests; a
	// NaN value is treated the same way.
	Value(name string) (v float64, ok bool)
}

// Result is the outcome of evaluating an expression against one window.
type Result struct {
	Passed   bool
	Observed string             // human summary of every series used, e.g. "success_rate=99.82%, p99=121ms"
	Values   map[string]float64 // canonical value of each series used that had data
}

// ErrNoData is wrapped by the error Eval returns when a series has no
// value, so callers can tell "could not judge" from a failed check with
// errors.Is.
var ErrNoData = errors.New("no data")

// Eval evaluates the expression against env. Every series is read, even
// where and/or could short-circuit, so that Observed always describes the
// whole SLA.
//
// If any series has no data the SLA cannot be judged: Eval returns an error
// wrapping ErrNoData that names them, with Passed false and Observed still
// listing what was known ("p99=n/a" for the rest). Arithmetic follows
// IEEE-754, so a division by zero yields ±Inf or NaN rather than an error,
// and any comparison with NaN is false.
func (e *Expr) Eval(env Env) (Result, error) {
	res := Result{Values: make(map[string]float64, len(e.idents))}
	var observed, missing []string
	for _, name := range e.idents {
		v, ok := env.Value(name)
		if !ok || math.IsNaN(v) {
			missing = append(missing, name)
			observed = append(observed, name+"=n/a")
			continue
		}
		res.Values[name] = v
		observed = append(observed, name+"="+FormatValue(series[name], v))
	}
	res.Observed = strings.Join(observed, ", ")
	if len(missing) > 0 {
		return res, fmt.Errorf("%w for %s", ErrNoData, strings.Join(missing, ", "))
	}
	res.Passed = evalBool(e.root, res.Values)
	return res, nil
}

// evalBool evaluates a node the checker typed as a condition.
func evalBool(n node, vals map[string]float64) bool {
	switch n := n.(type) {
	case *parenExpr:
		return evalBool(n.x, vals)
	case *unaryExpr: // only not is boolean
		return !evalBool(n.x, vals)
	case *binaryExpr:
		switch n.op {
		case tokAnd, tokOr:
			// Both sides are evaluated; see Eval.
			x, y := evalBool(n.x, vals), evalBool(n.y, vals)
			if n.op == tokAnd {
				return x && y
			}
			return x || y
		}
		x, y := evalNum(n.x, vals), evalNum(n.y, vals)
		switch n.op {
		case tokLT:
			return x < y
		case tokLE:
			return x <= y
		case tokGT:
			return x > y
		case tokGE:
			return x >= y
		case tokEQ:
			return x == y // exact: literals are converted exactly, see unit
		case tokNE:
			return x != y
		}
	}
	panic(fmt.Sprintf("verify: %T is not a condition", n))
}

// evalNum evaluates a node the checker typed as numeric.
func evalNum(n node, vals map[string]float64) float64 {
	switch n := n.(type) {
	case *numberLit:
		return n.value
	case *seriesRef:
		return vals[n.name]
	case *parenExpr:
		return evalNum(n.x, vals)
	case *unaryExpr: // only - is numeric
		return -evalNum(n.x, vals)
	case *binaryExpr:
		x, y := evalNum(n.x, vals), evalNum(n.y, vals)
		switch n.op {
		case tokPlus:
			return x + y
		case tokMinus:
			return x - y
		case tokStar:
			return x * y
		case tokSlash:
			return x / y
		}
	}
	panic(fmt.Sprintf("verify: %T is not numeric", n))
}
