package harness_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The proxy serves two listeners and keeps upstream connections alive; all
// of it must stop on Close. No goroutine needs ignoring: every test client
// closes its idle connections at test end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
