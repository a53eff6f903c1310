package guard_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/resctl/resctl/guard"
)

// A service's outgoing HTTP client guarded by a chain written as a
// scenario's guard: key writes one.
func ExampleNewTransport() {
	payments := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer payments.Close()

	specs, err := guard.Parse([]byte(`
- fallback: {body: '{"stale":true}'}
- breaker: {consecutive_failures: 3, failure_rate: 0}
- retry: {attempts: 2, backoff: {base: 1ms, max: 5ms}, budget: 20%}
- timeout: 300ms
`), "payments")
	if err != nil {
		fmt.Println(err)
		return
	}
	chain, err := guard.NewBuilder(guard.Options{}).Build(specs)
	if err != nil {
		fmt.Println(err)
		return
	}
	client := &http.Client{Transport: guard.NewTransport(http.DefaultTransport, chain)}

	resp, err := client.Get(payments.URL + "/api/pay")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, resp.Header.Get(guard.FallbackHeader), string(body))
	// Output: 200 static {"stale":true}
}

// A client spread over two instances of a service, with the proxy's pool
// limits: one of them is down, so its first failure ejects it (the
// balancer tries an instance that has not answered yet before any other)
// and the chain's retry sends that call again, to the instance that
// answers.
func ExampleNewPoolTransport() {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "paid")
	}))
	defer up.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer down.Close()

	eject := guard.DefaultEjectionConfig()
	eject.ConsecutiveFailures = 1
	pool, err := guard.NewBalancer([]string{up.URL, down.URL}, eject, guard.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	limits := guard.PoolConfig{MaxConns: 16, IdleTimeout: 30 * time.Second, MaxLifetime: time.Minute}
	specs, err := guard.Parse([]byte(`- retry: {attempts: 3, backoff: {base: 1ms, max: 5ms}}`), "payments")
	if err != nil {
		fmt.Println(err)
		return
	}
	chain, err := guard.NewBuilder(guard.Options{}).Build(specs)
	if err != nil {
		fmt.Println(err)
		return
	}
	client := &http.Client{Transport: guard.NewTransport(guard.NewPoolTransport(limits.Transport(nil, guard.Options{}), pool), chain)}
	defer client.CloseIdleConnections()

	paid := 0
	for range 20 {
		resp, err := client.Get("http://payments/api/pay") // the pool picks the host
		if err != nil {
			fmt.Println(err)
			return
		}
		if resp.StatusCode == http.StatusOK {
			paid++
		}
		resp.Body.Close()
	}
	for _, s := range pool.Stats() {
		if s.Ejected {
			fmt.Println("ejected:", s.Addr == down.URL)
		}
	}
	fmt.Println("paid:", paid)
	// Output:
	// ejected: true
	// paid: 20
}

// Any call — here a database query — guarded by a chain, with a
// classifier that does not count "no rows" as the database failing.
func ExampleCaller() {
	cfg := guard.DefaultBreakerConfig()
	cfg.ConsecutiveFailures, cfg.FailureRate = 2, 0
	breaker, err := guard.NewBreaker("db", cfg, guard.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	db := &guard.Caller{
		Chain: guard.NewChain(breaker),
		Route: "orders.by_id",
		Classify: func(err error) guard.Outcome {
			if errors.Is(err, sql.ErrNoRows) {
				return guard.Outcome{}
			}
			return guard.ClassifyError(err)
		},
	}
	query := func(err error) func(context.Context) error {
		return func(context.Context) error { return err }
	}
	ctx := context.Background()
	fmt.Println(db.Do(ctx, query(sql.ErrNoRows)))
	fmt.Println(db.Do(ctx, query(sql.ErrConnDone)))
	fmt.Println(db.Do(ctx, query(sql.ErrConnDone)))
	fmt.Println(errors.Is(db.Do(ctx, query(nil)), guard.ErrOpen))
	// Output:
	// sql: no rows in result set
	// sql: connection is already closed
	// sql: connection is already closed
	// true
}

// A gRPC client whose unary and stream calls run through a chain.
func ExampleUnaryClientInterceptor() {
	specs, _ := guard.Parse([]byte("- breaker: {failure_rate: 50%}\n- retry: {attempts: 3}\n- timeout: 1s\n"), "inventory")
	chain, _ := guard.NewBuilder(guard.Options{}).Build(specs)
	conn, err := grpc.NewClient("passthrough:///127.0.0.1:50051",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(guard.UnaryClientInterceptor(chain)),
		grpc.WithStreamInterceptor(guard.StreamClientInterceptor(chain)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	fmt.Println(len(chain.Policies()), "policies guard every call on conn")
	// Output: 3 policies guard every call on conn
}

// A chain kept in a file and reloaded when it changes, read by each call.
func ExampleOpenFile() {
	dir, _ := os.MkdirTemp("", "guard")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "guard.yaml")
	_ = os.WriteFile(path, []byte("- breaker: {failure_rate: 50%}\n- timeout: 500ms\n"), 0o644)

	f, err := guard.OpenFile(path, "payments", guard.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	// A Transport or an interceptor given f reads its current chain on
	// each call; f.Watch(ctx, time.Second, nil) reloads it on changes.
	client := &http.Client{Transport: guard.NewTransport(nil, f)}
	_ = client

	_ = os.WriteFile(path, []byte("- breaker: {failure_rate: 50%}\n- retry: {attempts: 30}\n"), 0o644)
	var pe *guard.ParseError
	if err := f.Reload(); errors.As(err, &pe) {
		p := pe.Problems[0]
		fmt.Printf("refused: line %d: %s: %s\n", p.Line, p.Path, p.Msg)
	}
	fmt.Println(len(f.Chain().Policies()), "policies still run")
	// Output:
	// refused: line 2: [1].retry.attempts: 30 is not 1..10: retries must be bounded
	// 2 policies still run
}
