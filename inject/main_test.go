package inject_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Faults wait on timers and requests' contexts; none may leave a goroutine
// behind. No goroutine needs ignoring: test servers are closed and test
// clients close their idle connections.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
