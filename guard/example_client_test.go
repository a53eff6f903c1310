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
