package guard_test

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/resctl/resctl/guard"
)

// startRedis runs a redis-server of its own on a free port of 127.0.0.1
// for the test. Without redis-server installed the test is skipped,
// unless RESCTL_REDIS_TEST=1 (as in CI) makes that a failure.
func startRedis(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("RESCTL_REDIS_TEST") == "1" {
			t.Fatal("redis-server not found, and RESCTL_REDIS_TEST=1 requires it: apt-get install -y redis-server")
		}
		t.Skip("redis-server not installed (apt-get install -y redis-server); set RESCTL_REDIS_TEST=1 to fail instead")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command(path, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := "127.0.0.1:" + port
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not start: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func redisLimiter(t *testing.T, addr string, edit func(*guard.RateLimitConfig)) *guard.RateLimit {
	t.Helper()
	c := guard.DefaultRateLimitConfig()
	c.Rate, c.Burst = 1.0/3600, 3
	c.Redis.Addr = addr
	c.Redis.Timeout = 2 * time.Second
	if edit != nil {
		edit(&c)
	}
	l, err := guard.NewRateLimit("shared", c, guard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestRateLimit_Redis(t *testing.T) {
	addr := startRedis(t)
	tests := []struct {
		name string
		edit func(*guard.RateLimitConfig)
	}{
		{"token bucket", func(c *guard.RateLimitConfig) { c.Redis.Prefix = "tb:" }},
		{"sliding window", func(c *guard.RateLimitConfig) {
			c.Redis.Prefix = "sw:"
			c.Algorithm, c.Rate, c.Window = guard.AlgorithmSlidingWindow, 3.0/3600, time.Hour
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Two proxies share one limit through Redis.
			a, b := redisLimiter(t, addr, tt.edit), redisLimiter(t, addr, tt.edit)
			for i, l := range []*guard.RateLimit{a, b, a} {
				if err := call(t, l, ok200); err != nil {
					t.Fatalf("call %d: %v", i+1, err)
				}
			}
			rej := rejected(t, call(t, b, ok200), guard.ErrLimited, "rate")
			if rej.RetryAfter < 10*time.Minute {
				t.Errorf("RetryAfter %v, want most of an hour", rej.RetryAfter)
			}
			rejected(t, call(t, a, ok200), guard.ErrLimited, "rate")
		})
	}
	t.Run("per header", func(t *testing.T) {
		l := redisLimiter(t, addr, func(c *guard.RateLimitConfig) {
			c.Redis.Prefix, c.Burst, c.Per, c.Header = "key:", 1, guard.PerHeader, "X-Tenant"
		})
		for _, tenant := range []string{"a", "b"} {
			if _, err := l.Acquire(t.Context(), &guard.Request{Header: http.Header{"X-Tenant": {tenant}}}); err != nil {
				t.Errorf("tenant %s: %v", tenant, err)
			}
		}
		_, err := l.Acquire(t.Context(), &guard.Request{Header: http.Header{"X-Tenant": {"a"}}})
		rejected(t, err, guard.ErrLimited, "rate")
	})
}

// TestRateLimit_RedisKey: two rate limits named apart, as two proxies
// configured by different people would be, share one limit through
// Redis when they give the same key, and keep their own without one.
func TestRateLimit_RedisKey(t *testing.T) {
	addr := startRedis(t)
	limit := func(name, key string) *guard.RateLimit {
		c := guard.DefaultRateLimitConfig()
		c.Rate, c.Burst = 1.0/3600, 2
		c.Redis.Addr, c.Redis.Key, c.Redis.Timeout = addr, key, 2*time.Second
		l, err := guard.NewRateLimit(name, c, guard.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	t.Run("the same key, one limit", func(t *testing.T) {
		a, b := limit("orders-east", "orders"), limit("orders-west", "orders")
		for i, l := range []*guard.RateLimit{a, b} {
			if err := call(t, l, ok200); err != nil {
				t.Fatalf("call %d: %v", i+1, err)
			}
		}
		rejected(t, call(t, a, ok200), guard.ErrLimited, "rate")
		rejected(t, call(t, b, ok200), guard.ErrLimited, "rate")
	})
	t.Run("no key, a limit per name", func(t *testing.T) {
		a, b := limit("users-east", ""), limit("users-west", "")
		for i, l := range []*guard.RateLimit{a, a, b, b} {
			if err := call(t, l, ok200); err != nil {
				t.Fatalf("call %d: %v", i+1, err)
			}
		}
		rejected(t, call(t, a, ok200), guard.ErrLimited, "rate")
	})
}

func TestRateLimit_RedisUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens here now
	for _, failOpen := range []bool{true, false} {
		l := redisLimiter(t, addr, func(c *guard.RateLimitConfig) {
			c.Redis.FailOpen = failOpen
			c.Redis.Timeout = 200 * time.Millisecond
		})
		err := call(t, l, ok200)
		if failOpen && err != nil {
			t.Errorf("fail_open: %v, want the call admitted", err)
		}
		if !failOpen {
			rejected(t, err, guard.ErrLimited, "redis")
		}
	}
}
