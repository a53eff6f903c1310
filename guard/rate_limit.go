package guard

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resctl/resctl/quantity"
)

// Rate limit algorithms.
const (
	// AlgorithmTokenBucket admits Rate calls per second with bursts of up
	// to Burst, as a bucket of Burst tokens refilled at Rate would. It is
	// run as GCRA: one timestamp per key, one compare-and-swap per call.
	AlgorithmTokenBucket = "token_bucket"
	// AlgorithmSlidingWindow admits Rate × Window calls in any Window,
	// estimating the calls of the sliding window from the current and the
	// previous fixed window (the previous one weighted by how much of it
	// the sliding window still covers).
	AlgorithmSlidingWindow = "sliding_window"
)

// What a rate limit counts separately.
const (
	PerGlobal = "global"
	PerRoute  = "route"
	PerHeader = "header"
)

// RateLimitConfig configures a rate limiter: one for all calls, one per
// route, or one per value of a header (a tenant, a user). With Redis set,
// the counts live in Redis and every proxy pointing at it shares them.
type RateLimitConfig struct {
	// Algorithm is token_bucket (the default) or sliding_window.
	Algorithm string `yaml:"algorithm"`
	// Rate is the calls admitted, per second or other unit.
	Rate quantity.Rate `yaml:"rate"`
	// Burst (token bucket) is how many calls may come at once; 0 means
	// one second's worth of Rate (at least 1).
	Burst int `yaml:"burst"`
	// Window (sliding window) is the span Rate is judged over.
	Window time.Duration `yaml:"window"`
	// Per says what is limited separately: global (one limit), route, or
	// header (one limit per value of Header).
	Per string `yaml:"per"`
	// Header names the header whose values are limited separately, with per:
	// header.
	Header string `yaml:"header"`
	// MaxKeys bounds the keys tracked at once (per route or header); idle
	// keys are forgotten first.
	MaxKeys int `yaml:"max_keys"`
	// Redis keeps the counts in a Redis server that several proxies share.
	Redis RedisConfig `yaml:"redis"`
}

// DefaultRateLimitConfig is a global token bucket; Rate has no default.
func DefaultRateLimitConfig() RateLimitConfig {
	return RateLimitConfig{
		Algorithm: AlgorithmTokenBucket,
		Window:    time.Second,
		Per:       PerGlobal,
		MaxKeys:   10000,
		Redis:     DefaultRedisConfig(),
	}
}

var _ Config = (*RateLimitConfig)(nil)

// Kind implements Config.
func (*RateLimitConfig) Kind() string { return "rate_limit" }

// Check implements Config.
func (c *RateLimitConfig) Check(problem func(field, msg string)) {
	switch c.Algorithm {
	case AlgorithmTokenBucket, AlgorithmSlidingWindow:
	default:
		problem("algorithm", fmt.Sprintf("unknown algorithm %q; use token_bucket or sliding_window", c.Algorithm))
	}
	r := float64(c.Rate)
	switch {
	case math.IsNaN(r) || math.IsInf(r, 0):
		problem("rate", "must be a number of calls per unit of time, e.g. 100/s")
	case r <= 0:
		problem("rate", "must be set above zero, e.g. 100/s")
	}
	if c.Burst < 0 {
		problem("burst", "must not be negative (0 means one second's worth)")
	}
	if c.Algorithm == AlgorithmSlidingWindow {
		switch {
		case c.Window <= 0:
			problem("window", "must be above zero, e.g. 1s")
		case r > 0 && r*c.Window.Seconds() < 1:
			problem("window", fmt.Sprintf("%v at %v admits less than one call", c.Window, c.Rate))
		}
	}
	switch c.Per {
	case PerGlobal, PerRoute:
		if c.Header != "" {
			problem("header", fmt.Sprintf("is only read with per: header, not per: %s", c.Per))
		}
	case PerHeader:
		if c.Header == "" {
			problem("header", "must name the header to key on, e.g. X-Tenant")
		}
	default:
		problem("per", fmt.Sprintf("unknown key %q; use global, route or header", c.Per))
	}
	if c.MaxKeys < 1 {
		problem("max_keys", "must be at least 1")
	}
	c.Redis.check(prefixed("redis", problem))
}

// Build implements Config.
func (c *RateLimitConfig) Build(name string, o Options) (Policy, error) {
	return build(NewRateLimit(name, *c, o))
}

func (c *RateLimitConfig) burst() int64 {
	if c.Burst > 0 {
		return int64(c.Burst)
	}
	return max(1, int64(float64(c.Rate)))
}

// RateLimit is a token bucket or sliding window limiter, local or shared
// through Redis. Its states are "passing" and "limiting" (it rejected a
// call within the last second).
type RateLimit struct {
	core
	pressure
	cfg RateLimitConfig

	interval int64 // token bucket: nanoseconds per token
	tau      int64 // token bucket: how far ahead of now the schedule may run
	limit    float64
	// keyed: the limit is per route or header; bucket: the algorithm is
	// the token bucket (the configuration's strings, compared once).
	keyed, bucket bool

	// global is the key of a limit that has one (hot's), and admits
	// counts admissions (the core's count stays 0): what every call
	// writes, padded onto cache lines of their own, so that parallel
	// calls move one line between cores, not the core's as well.
	global *rlKey
	hot    struct {
		_      [128]byte
		key    rlKey
		admits atomic.Uint64
		_      [128 - 48]byte
	}
	seed   maphash.Seed
	shards [rlShards]rlShard
	redis  *redisLimiter
}

const rlShards = 32

type rlShard struct {
	mu   sync.RWMutex
	keys map[string]*rlKey
}

// rlKey is the state of one key: a GCRA theoretical arrival time, or the
// two windows of a sliding window counter.
type rlKey struct {
	tat atomic.Int64

	mu       sync.Mutex
	window   int64 // number of the current fixed window
	cur, prv int64
}

var _ Policy = (*RateLimit)(nil)

// NewRateLimit returns a limiter with full buckets and empty windows.
func NewRateLimit(name string, c RateLimitConfig, o Options) (*RateLimit, error) {
	if err := validate(&c, name); err != nil {
		return nil, err
	}
	l := &RateLimit{cfg: c, seed: maphash.MakeSeed()}
	l.global = &l.hot.key
	l.init("rate_limit", name, o, []string{"passing", "limiting"}, []string{"rate", "redis"}, exhausted())
	l.admittedHook = l.hot.admits.Load
	l.interval = max(1, int64(float64(time.Second)/float64(c.Rate)))
	l.tau = (c.burst() - 1) * l.interval
	l.limit = float64(c.Rate) * c.Window.Seconds()
	l.keyed, l.bucket = c.Per != PerGlobal, c.Algorithm == AlgorithmTokenBucket
	l.global.window = -1
	for i := range l.shards {
		l.shards[i].keys = map[string]*rlKey{}
	}
	if c.Redis.Addr != "" {
		l.redis = newRedisLimiter(name, c)
	}
	return l, nil
}

// Limit is the configured rate, in calls per second.
func (l *RateLimit) Limit() float64 { return float64(l.cfg.Rate) }

// Keys is how many keys the limiter tracks now.
func (l *RateLimit) Keys() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.RLock()
		n += len(s.keys)
		s.mu.RUnlock()
	}
	return n
}

// Close releases the Redis connection, if there is one.
func (l *RateLimit) Close() error {
	if l.redis != nil {
		return l.redis.close()
	}
	return nil
}

func (l *RateLimit) key(r *Request) string {
	switch {
	case r == nil:
		return ""
	case l.cfg.Per == PerRoute:
		return r.Route
	case r.Header != nil:
		return r.Header.Get(l.cfg.Header)
	}
	return ""
}

// Acquire implements Policy. With Redis it makes one round trip, bounded
// by redis.timeout and ctx.
func (l *RateLimit) Acquire(ctx context.Context, r *Request) (Permit, error) {
	if l.redis != nil {
		return l.acquireRedis(ctx, r)
	}
	return l.acquireLocal(r, l.clk.nanos())
}

func (l *RateLimit) acquireAt(ctx context.Context, r *Request, now int64) (Permit, int64, error) {
	if l.redis != nil {
		p, err := l.acquireRedis(ctx, r)
		return p, -1, err // the round trip took time
	}
	now = l.clk.or(now)
	p, err := l.acquireLocal(r, now)
	return p, now, err
}

func (l *RateLimit) acquireLocal(r *Request, now int64) (Permit, error) {
	k := l.global
	if l.keyed {
		k = l.lookup(l.key(r), now)
	}
	var wait int64
	if l.bucket {
		wait = l.takeToken(k, now)
	} else {
		wait = l.countInWindow(k, now)
	}
	if wait > 0 {
		l.onReject(&l.core, now)
		return Permit{}, l.reject(0, time.Duration(wait))
	}
	l.hot.admits.Add(1)
	l.onAdmit(&l.core, now)
	return Permit{}, nil
}

func (l *RateLimit) acquireRedis(ctx context.Context, r *Request) (Permit, error) {
	ok, wait, err := l.redis.allow(ctx, l.key(r))
	if err != nil {
		if ctx.Err() != nil {
			return Permit{}, ctx.Err()
		}
		if !l.cfg.Redis.FailOpen {
			l.onReject(&l.core, l.clk.nanos())
			return Permit{}, l.reject(1, 0)
		}
		ok = true // fail open: an unreachable Redis must not stop traffic
	}
	if !ok {
		l.onReject(&l.core, l.clk.nanos())
		return Permit{}, l.reject(0, wait)
	}
	l.hot.admits.Add(1)
	l.onAdmit(&l.core, -1)
	return Permit{}, nil
}

// takeToken runs GCRA: the key's theoretical arrival time moves one
// interval per admitted call, and a call is admitted while that time is at
// most tau ahead of now. It returns 0, or how long until a call would be.
func (l *RateLimit) takeToken(k *rlKey, now int64) int64 {
	for {
		tat := k.tat.Load()
		t := max(tat, now)
		if ahead := t - now; ahead > l.tau {
			return ahead - l.tau
		}
		if k.tat.CompareAndSwap(tat, t+l.interval) {
			return 0
		}
	}
}

// countInWindow counts a call in the sliding window if it fits. It
// returns 0, or how long until a call would fit.
func (l *RateLimit) countInWindow(k *rlKey, now int64) int64 {
	w := int64(l.cfg.Window)
	idx := now / w
	k.mu.Lock()
	defer k.mu.Unlock()
	switch idx - k.window {
	case 0:
	case 1:
		k.prv, k.cur = k.cur, 0
	default:
		k.prv, k.cur = 0, 0
	}
	k.window = idx
	wait := slidingWait(float64(k.prv), float64(k.cur), l.limit, now-idx*w, w)
	if wait == 0 {
		k.cur++
	}
	return wait
}

// slidingWait is 0 when one more call fits in the sliding window estimate
// prev × (w − elapsed)/w + cur, or how long until it would.
func slidingWait(prev, cur, limit float64, elapsed, w int64) int64 {
	rest := float64(w-elapsed) / float64(w)
	if prev*rest+cur+1 <= limit {
		return 0
	}
	if cur+1 > limit || prev == 0 {
		// Not before the next window, and then not until this window's
		// calls, as the next one's previous, weigh little enough:
		// cur × (w − t)/w + 1 ≤ limit.
		next := w - elapsed
		if cur > 0 {
			next += int64(math.Ceil(float64(w) * (1 - (limit-1)/cur)))
		}
		return max(1, next)
	}
	// prev × (w − elapsed − t)/w + cur + 1 ≤ limit
	t := float64(w-elapsed) - (limit-cur-1)/prev*float64(w)
	return max(1, int64(math.Ceil(t)))
}

// lookup finds or makes the state of key. When a shard is full it forgets
// idle keys (a GCRA key whose schedule is in the past is the same as a
// fresh one), or, failing that, an arbitrary one.
func (l *RateLimit) lookup(key string, now int64) *rlKey {
	s := &l.shards[maphash.String(l.seed, key)%rlShards]
	s.mu.RLock()
	k := s.keys[key]
	s.mu.RUnlock()
	if k != nil {
		return k
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k = s.keys[key]; k != nil {
		return k
	}
	if perShard := max(1, l.cfg.MaxKeys/rlShards); len(s.keys) >= perShard {
		w := int64(l.cfg.Window)
		for name, old := range s.keys {
			if old.idle(now, w) {
				delete(s.keys, name)
			}
		}
		for name := range s.keys {
			if len(s.keys) < perShard {
				break
			}
			delete(s.keys, name)
		}
	}
	k = &rlKey{window: -1}
	s.keys[key] = k
	return k
}

// idle says whether the key is in the state a fresh one would be.
func (k *rlKey) idle(now, w int64) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.tat.Load() <= now && (k.window < 0 || now/w-k.window > 1)
}

// Release implements Policy: a rate limit does not learn from outcomes.
func (l *RateLimit) Release(Permit, Outcome) {}

func (*RateLimit) timeless() {}

func (*RateLimit) deaf() {}
