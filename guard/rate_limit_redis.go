package guard

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisConfig points a rate limiter at a Redis server shared by several
// proxies. With Addr empty, counts stay in the process.
type RedisConfig struct {
	// Addr is the Redis server's host:port; empty keeps the counts in the
	// process.
	Addr string `yaml:"addr"`
	// Username is the Redis ACL user, if any.
	Username string `yaml:"username"`
	// Password is the Redis password, if any.
	Password string `yaml:"password"`
	// DB is the Redis database number.
	DB int `yaml:"db"`
	// Prefix starts every key the limiter writes.
	Prefix string `yaml:"prefix"`
	// Key names the limit in Redis; empty means the policy's name. Rate
	// limits with the same key (and prefix) share one limit whatever
	// their policies are called, so proxies configured apart can.
	Key string `yaml:"key"`
	// Timeout bounds one round trip.
	Timeout time.Duration `yaml:"timeout"`
	// FailOpen admits calls while Redis cannot be reached; otherwise they
	// are rejected.
	FailOpen bool `yaml:"fail_open"`
}

// DefaultRedisConfig fails open after 50ms.
func DefaultRedisConfig() RedisConfig {
	return RedisConfig{Prefix: "resctl:rl:", Timeout: 50 * time.Millisecond, FailOpen: true}
}

func (c *RedisConfig) check(problem func(field, msg string)) {
	if c.Addr == "" {
		if c.Key != "" {
			problem("key", "only applies with addr set: it names a limit shared through Redis")
		}
		return
	}
	if !strings.Contains(c.Addr, ":") {
		problem("addr", fmt.Sprintf("%q needs a port, e.g. 127.0.0.1:6379", c.Addr))
	}
	if c.DB < 0 {
		problem("db", "must not be negative")
	}
	if c.Timeout <= 0 {
		problem("timeout", "must be above zero, e.g. 50ms")
	}
}

// gcraScript is the token bucket as GCRA, atomically in Redis, on Redis's
// own clock so that proxies with skewed clocks agree. Times are in
// microseconds, formatted as integers: Lua's default number format would
// round them.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat - now > tau then
  return {0, tat - now - tau}
end
local nxt = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.ceil((nxt - now) / 1000) + 1)
return {1, 0}
`)

// slidingScript is the sliding window counter, atomically in Redis: one
// hash per key with a field per fixed window (in milliseconds).
var slidingScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local w = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local idx = math.floor(now / w)
local elapsed = now - idx * w
local cf = string.format('%.0f', idx)
local pf = string.format('%.0f', idx - 1)
local cur = tonumber(redis.call('HGET', KEYS[1], cf) or '0')
local prev = tonumber(redis.call('HGET', KEYS[1], pf) or '0')
local rest = (w - elapsed) / w
if prev * rest + cur + 1 > limit then
  if cur + 1 > limit or prev == 0 then
    -- not before the next window, and then until this window's calls,
    -- as the next one's previous, weigh little enough
    local next = w - elapsed
    if cur > 0 then
      next = next + math.ceil(w * (1 - (limit - 1) / cur))
    end
    return {0, math.max(1, next) * 1000}
  end
  local wait = (w - elapsed) - (limit - cur - 1) / prev * w
  return {0, math.max(1, math.ceil(wait)) * 1000}
end
redis.call('HINCRBY', KEYS[1], cf, 1)
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if f ~= cf and f ~= pf then redis.call('HDEL', KEYS[1], f) end
end
redis.call('PEXPIRE', KEYS[1], 2 * w)
return {1, 0}
`)

type redisLimiter struct {
	client  *redis.Client
	script  *redis.Script
	prefix  string
	args    []any
	timeout time.Duration
}

func newRedisLimiter(name string, c RateLimitConfig) *redisLimiter {
	r := &redisLimiter{
		client: redis.NewClient(&redis.Options{
			Addr: c.Redis.Addr, Username: c.Redis.Username, Password: c.Redis.Password, DB: c.Redis.DB,
			DialTimeout: c.Redis.Timeout, ReadTimeout: c.Redis.Timeout, WriteTimeout: c.Redis.Timeout,
			ContextTimeoutEnabled: true,
		}),
		prefix:  c.Redis.Prefix + cmp.Or(c.Redis.Key, name) + ":",
		timeout: c.Redis.Timeout,
	}
	if c.Algorithm == AlgorithmTokenBucket {
		interval := max(1, int64(float64(time.Second/time.Microsecond)/float64(c.Rate)))
		r.script = gcraScript
		r.args = []any{interval, (c.burst() - 1) * interval}
	} else {
		r.script = slidingScript
		r.args = []any{c.Window.Milliseconds(), float64(c.Rate) * c.Window.Seconds()}
	}
	return r
}

// allow runs the script for key: whether the call may go, or how long
// until one could.
func (r *redisLimiter) allow(ctx context.Context, key string) (bool, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	res, err := r.script.Run(ctx, r.client, []string{r.prefix + key}, r.args...).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("redis rate limit: %w", err)
	}
	if len(res) != 2 {
		return false, 0, errors.New("redis rate limit: unexpected script reply")
	}
	return res[0] == 1, time.Duration(res[1]) * time.Microsecond, nil
}

func (r *redisLimiter) close() error { return r.client.Close() }
