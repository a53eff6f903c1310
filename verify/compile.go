package verify

import "time"

// The checker compiles the AST into a small tree of enodes over a table of
// leaves. An enode is one struct, switched on by op, so that evaluating a
// condition at each of thousands of instants costs no interface calls and
// no allocation. Leaves are what the expression reads from the Env: load
// series, selectors, function calls and states, each with its window; the
// evaluator computes each leaf once per window and caches it.

// eop is an operation of the compiled tree.
type eop uint8

const (
	eConst   eop = iota + 1 // v
	eText                   // s: a state literal, only ever an operand the checker folds away
	eLeaf                   // leaf
	eNeg                    // -x
	eAdd                    // x + y
	eSub                    // x - y
	eMul                    // x * y
	eDiv                    // x / y
	eLT                     // x < y
	eLE                     // x <= y
	eGT                     // x > y
	eGE                     // x >= y
	eEQ                     // x == y
	eNE                     // x != y
	eStateEQ                // the state leaf x is s
	eStateNE                // the state leaf x is not s
	eNot                    // not x
	eAnd                    // x and y
	eOr                     // x or y
)

type enode struct {
	op   eop
	x, y *enode
	v    float64
	s    string
	leaf int
}

// leafOp says what a leaf reads.
type leafOp uint8

const (
	leafLoad      leafOp = iota + 1 // a load series: RunEnv.Load
	leafSelector                    // a bare selector: its value at the window's end
	leafAggregate                   // rate, increase, avg, min, max, last, first of a selector
	leafQuantile                    // histogram_quantile
	leafState                       // breaker, fault, state
	leafTiming                      // time_to, recovery_time
)

// winKind says which window a leaf is read over.
type winKind uint8

const (
	winNone   winKind = iota // the current window: the SLA's, or one step at an instant
	winDuring                // a phase's window, the same at every instant
	winOver                  // the trailing duration ending where the current window ends
)

type window struct {
	kind  winKind
	phase int           // winDuring: index into Expr.phases
	over  time.Duration // winOver
	text  string        // " during baseline", " over 30s", for labels
}

// leaf is one value an expression reads.
type leaf struct {
	op    leafOp
	label string // as listed in Result.Observed and Values
	kind  Kind   // of a numeric value, for formatting
	// scope is 0 for leaves read over the SLA's window, and n for those in
	// the condition of the n-th timing function, read at each instant.
	scope int
	win   window
	fn    *function   // the function called, for calls
	name  string      // leafLoad: the series
	sel   int         // leafSelector, leafAggregate, leafQuantile: index into Expr.sels
	q     float64     // leafQuantile
	state stateRef    // leafState
	tm    *timingSpec // leafTiming
}

// timingSpec is a time_to or recovery_time call.
type timingSpec struct {
	cond *enode
	from int           // index into Expr.phases, or -1 for the Scope's default
	hold time.Duration // recovery_time
	// states lists the state leaves of cond: the instants at which they
	// change are scanned too, so state conditions are timed exactly.
	states []int
	// scope is the scope of cond's leaves.
	scope int
	// fine is set for a time_to whose condition reads only rates and
	// ratios of the load over the current window, states and values
	// during a phase: a FineEnv times it to its FineStep.
	fine bool
}

// stateRef is a state an expression reads, with where its name is written.
type stateRef struct {
	kind, name string
	pos        int
}

// nameRef is a phase name as written, for CheckNames.
type nameRef struct {
	name string
	pos  int
}

// leafKey identifies a leaf for sharing: the same text read in the same
// scope is the same value.
type leafKey struct {
	scope int
	label string
}

// compile checks the parsed tree root of src and returns the expression.
func compile(src string, runes []rune, root node, idents []string) (*Expr, error) {
	e := &Expr{src: src, idents: idents, first: -1}
	c := &checker{src: runes, e: e, leafIndex: map[leafKey]int{}, selIndex: map[string]int{}, timings: map[string]int{}}
	t, en, err := c.check(root)
	if err != nil {
		return nil, err
	}
	if t != tyBool {
		return nil, errAt(start(root), "expression must be a condition, %s", exampleCondition)
	}
	e.root = en
	return e, nil
}
