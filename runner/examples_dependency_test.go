package runner

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/resctl/resctl/internal/demo"
	"github.com/resctl/resctl/scenario"
)

// The dependency topology's example, as CI runs it: the orders service
// (testdata/services/orders, a real program using guard as a library) is
// built, started by resctl with the payments proxy's address, and must
// open its own breaker when payments slow down.
func TestExample_DependencyBreaker(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a service")
	}
	bin := filepath.Join(t.TempDir(), "orders")
	build := exec.Command("go", "build", "-o", bin, "./testdata/services/orders")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the orders service: %v\n%s", err, out)
	}
	payments, err := demo.Start("127.0.0.1:0", demo.Options{Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer payments.Close()
	addr := freeAddr(t)
	t.Setenv("ORDERS_BIN", bin)
	t.Setenv("ORDERS_ADDR", addr)
	t.Setenv("PAYMENTS_URL", payments.URL())
	s, err := scenario.ReadFile("../testdata/scenarios/dependency-breaker.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), s, Options{LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, sla := range r.SLAs {
		if !sla.Passed {
			t.Errorf("SLA %q failed: observed %s %s", sla.Name, sla.Observed, sla.Error)
		}
	}
	if r.Aborted != "" {
		t.Errorf("aborted: %s", r.Aborted)
	}
	_ = os.Remove(bin)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	srv, err := demo.Start("127.0.0.1:0", demo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	_ = srv.Close()
	return addr
}
