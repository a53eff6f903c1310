package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client switches runtime faults on and off in a service's agent; BaseURL
// is where the agent is mounted, e.g. http://127.0.0.1:8080/debug/resctl.
type Client struct {
	BaseURL string
	HTTP    *http.Client
}

// RequestError is a refusal by the agent, with its problems.
type RequestError struct {
	Status   int
	Msg      string    `json:"error"`
	Problems []Problem `json:"problems"`
}

func (e *RequestError) Error() string {
	parts := []string{e.Msg}
	for _, p := range e.Problems {
		parts = append(parts, p.Field+": "+p.Msg)
	}
	return fmt.Sprintf("agent: %s (%d)", strings.Join(parts, "; "), e.Status)
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, rd)
	if err != nil {
		return err
	}
	if method != http.MethodGet {
		// The agent takes no change that does not say it is JSON.
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		e := &RequestError{Status: resp.StatusCode}
		if json.Unmarshal(raw, e) != nil || e.Msg == "" {
			e.Msg = strings.TrimSpace(string(raw))
		}
		return e
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// Start switches a fault on for ttl; params are the kind's parameters as
// JSON-encodable values, e.g. map[string]any{"count": 1000}.
func (c *Client) Start(ctx context.Context, id, kind string, ttl time.Duration, params any) (Info, error) {
	req := Request{ID: id, Kind: kind, TTL: ttl.String()}
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return Info{}, err
		}
		req.Params = b
	}
	var info Info
	err := c.do(ctx, http.MethodPost, "/faults", req, &info)
	return info, err
}

// Stop ends one fault.
func (c *Client) Stop(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/faults/"+url.PathEscape(id), nil, nil)
}

// Clear ends every fault.
func (c *Client) Clear(ctx context.Context) error {
	return c.do(ctx, http.MethodDelete, "/faults", nil, nil)
}

// List returns the running faults.
func (c *Client) List(ctx context.Context) ([]Info, error) {
	var out struct{ Faults []Info }
	err := c.do(ctx, http.MethodGet, "/faults", nil, &out)
	return out.Faults, err
}
