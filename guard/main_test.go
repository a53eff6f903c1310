package guard_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Policies start no goroutine of their own; tests that start servers or
// Redis clients close them. Nothing may be left running.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
