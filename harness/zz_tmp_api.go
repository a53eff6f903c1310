package harness

// TEMPORARY until the events branch is merged.

import (
	"context"
	"time"
)

type Event struct {
	Seq    uint64    `json:"seq"`
	At     time.Time `json:"at"`
	Proxy  string    `json:"proxy,omitempty"`
	Source string    `json:"source"`
	Kind   string    `json:"kind"`
	ID     string    `json:"id,omitempty"`
	Detail string    `json:"detail,omitempty"`
	From   string    `json:"from,omitempty"`
	To     string    `json:"to,omitempty"`
}

type TrafficPage struct {
	Start   time.Time       `json:"start"`
	Now     int64           `json:"now"`
	Seconds []TrafficSecond `json:"seconds"`
}

type TrafficSecond struct {
	S        int64             `json:"s"`
	Requests uint64            `json:"requests"`
	Errors   uint64            `json:"errors"`
	Codes    map[string]uint64 `json:"codes"`
	P50Ms    float64           `json:"p50_ms"`
	P99Ms    float64           `json:"p99_ms"`
	MaxMs    float64           `json:"max_ms"`
	Hist     [][2]int64        `json:"hist"`
}

func (c *AdminClient) Events(ctx context.Context, after uint64) ([]Event, uint64, error) {
	return nil, 0, nil
}
func (c *AdminClient) Mark(ctx context.Context, text string) error { return nil }
func (c *AdminClient) Traffic(ctx context.Context, proxy string, after int64) (TrafficPage, error) {
	return TrafficPage{}, nil
}

type PolicyInfo struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"`
	State string `json:"state"`
}
