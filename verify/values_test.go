package verify_test

import (
	"time"

	"github.com/resctl/resctl/verify"
)

// valuer supplies one value per load series for the window under test:
// the simplest environment, for tests of the language itself.
type valuer interface {
	Value(name string) (float64, bool)
}

// evalValues checks e against a valuer standing for the SLA's window; it
// knows no phases, states or scraped series.
func evalValues(e *verify.Expr, v valuer) (verify.Result, error) {
	return e.Check(valuesEnv{v}, verify.Scope{})
}

type valuesEnv struct{ v valuer }

func (e valuesEnv) Run() verify.Window                                 { return verify.Window{} }
func (e valuesEnv) Phase(string) (verify.Window, bool)                 { return verify.Window{}, false }
func (e valuesEnv) Step() time.Duration                                { return time.Second }
func (e valuesEnv) Load(name string, _ verify.Window) (float64, bool)  { return e.v.Value(name) }
func (e valuesEnv) Series(verify.Selector) []verify.Series             { return nil }
func (e valuesEnv) State(string, string, time.Duration) (string, bool) { return "", false }
func (e valuesEnv) StateChanges(string, string) []time.Duration        { return nil }
