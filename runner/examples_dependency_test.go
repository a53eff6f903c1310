package runner

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/resctl/resctl/internal/demo"
	"github.com/resctl/resctl/internal/loopback"
	"github.com/resctl/resctl/report"
)

// The dependency topology's example, as CI runs it: the orders service
// (testdata/services/orders, a real program using guard as a library) is
// built, started by resctl with the payments proxy's address, and must
// open its own breaker when payments slow down.
func TestExample_DependencyBreaker(t *testing.T) {
	r := runOrdersExample(t, "dependency-breaker.yaml")
	if r.Aborted != "" {
		t.Errorf("aborted: %s", r.Aborted)
	}
}

// Several named proxies in one scenario: the orders service reaches
// payments and stock through a proxy each, and each fault acts on the
// proxy it names, and only there.
func TestExample_DependencyTwoProxies(t *testing.T) {
	r := runOrdersExample(t, "dependency-two-proxies.yaml")
	proxyOf := map[string]string{}
	for _, f := range r.Faults {
		proxyOf[f.ID] = f.Proxy
		if !f.Fired {
			t.Errorf("fault %s on %s never fired", f.ID, f.Proxy)
		}
	}
	if proxyOf["slow_payments/latency"] != "payments" || proxyOf["failing_stock/abort"] != "stock" {
		t.Errorf("faults by proxy = %v, want the latency on payments and the abort on stock", proxyOf)
	}
}

// runOrdersExample builds the orders service and runs one of its example
// scenarios with the demo target as both payments and stock, failing the
// test on any failed SLA.
func runOrdersExample(t *testing.T, file string) *report.Report {
	t.Helper()
	return runServiceExample(t, "./testdata/services/orders", "ORDERS_BIN", "ORDERS_ADDR", file)
}

// runServiceExample takes the service built from pkg (one of programs),
// passes its binary and a free address in binEnv and addrEnv, and
// runs the example scenario file with `resctl run`, the demo target as
// every dependency (PAYMENTS_URL, STOCK_URL) and env besides, failing
// the test on any failed SLA. The test runs in parallel with others.
func runServiceExample(t *testing.T, pkg, binEnv, addrEnv, file string, env ...string) *report.Report {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs a service")
	}
	t.Parallel()
	bin := programs.wait(t, pkg)
	deps, err := demo.Start("127.0.0.1:0", demo.Options{Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer deps.Close()
	env = append(env, binEnv+"="+bin, addrEnv+"="+freeAddr(t), "PAYMENTS_URL="+deps.URL(), "STOCK_URL="+deps.URL())
	r := runExample(t, programs.wait(t, "./cmd/resctl"), "../testdata/scenarios/"+file, env...)
	requirePassed(t, r)
	return r
}

// requirePassed fails the test for every SLA of r that failed.
func requirePassed(t *testing.T, r *report.Report) {
	t.Helper()
	for _, sla := range r.SLAs {
		if !sla.Passed {
			t.Errorf("SLA %q failed: observed %s %s", sla.Name, sla.Observed, sla.Error)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := loopback.QuietAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// The dependency topology with a real redis-server, which the scenario
// itself starts as a service: a partition of the Redis proxy degrades the
// cache service (testdata/services/cache) and it recovers after.
func TestExample_DependencyRedisPartition(t *testing.T) {
	runCacheExample(t, "dependency-redis-partition.yaml")
}

// A process fault on a dependency: redis-server frozen by SIGSTOP under
// the cache service, whose timeouts must answer meanwhile, and continued.
func TestExample_DependencyRedisPause(t *testing.T) {
	r := runCacheExample(t, "dependency-redis-pause.yaml")
	if len(r.Processes) != 2 || r.Processes[0].Name != "redis" || r.Processes[0].Restarts != 0 || r.Processes[0].NotReadyS <= 0 {
		t.Errorf("processes = %+v, want redis paused for a while and never restarted, then the target", r.Processes)
	}
}

// runCacheExample builds the cache service and runs one of its example
// scenarios with `resctl run` and a real redis-server, failing the test
// on any failed SLA. The test runs in parallel with others.
func runCacheExample(t *testing.T, file string) *report.Report {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs a service")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("RESCTL_REDIS_TEST") != "" {
			t.Fatal("redis-server is not installed (apt-get install redis-server) and RESCTL_REDIS_TEST is set")
		}
		t.Skip("redis-server is not installed; apt-get install redis-server, or set RESCTL_REDIS_TEST=1 to require it")
	}
	t.Parallel()
	bin := programs.wait(t, "./testdata/services/cache")
	redisAddr := freeAddr(t)
	_, port, _ := strings.Cut(redisAddr, ":")
	r := runExample(t, programs.wait(t, "./cmd/resctl"), "../testdata/scenarios/"+file,
		"CACHE_BIN="+bin, "CACHE_ADDR="+freeAddr(t), "REDIS_PORT="+port)
	requirePassed(t, r)
	// redis-server was stopped with the run: its port is free again.
	if c, err := net.DialTimeout("tcp", redisAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("redis-server still listens on %s after the run", redisAddr)
	}
	return r
}
