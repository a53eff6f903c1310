package load_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Run starts vegeta's workers and an HTTP transport; every one of their
// goroutines must be gone once Run has returned and the test servers are
// closed. No goroutine needs ignoring.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
