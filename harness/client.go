package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/resctl/resctl/inject"
)

// DefaultAdminURL is where the admin client looks when told nothing:
// `resctl proxy`'s default admin address.
const DefaultAdminURL = "http://" + DefaultAdminListen

// APIError is an error answer of the admin API.
type APIError struct {
	Status   int
	Msg      string
	Problems []inject.FieldProblem
}

func (e *APIError) Error() string { return fmt.Sprintf("admin API: %s (%d)", e.Msg, e.Status) }

// AdminClient speaks the resctl-native admin API; `resctl inject` is built
// on it.
type AdminClient struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

func (c *AdminClient) do(ctx context.Context, method, path string, body any, out any) error {
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
		// The admin API takes no change that does not say it is JSON.
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
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
		var e apiError
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(raw))
		}
		return &APIError{Status: resp.StatusCode, Msg: e.Error, Problems: e.Problems}
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// AddFault switches a fault on on the named proxy.
func (c *AdminClient) AddFault(ctx context.Context, proxy string, req FaultRequest) (FaultInfo, error) {
	var f FaultInfo
	err := c.do(ctx, http.MethodPost, "/api/v1/proxies/"+url.PathEscape(proxy)+"/faults", req, &f)
	return f, err
}

// Proxies lists the proxies with their active faults.
func (c *AdminClient) Proxies(ctx context.Context) ([]ProxyInfo, error) {
	var out struct{ Proxies []ProxyInfo }
	err := c.do(ctx, http.MethodGet, "/api/v1/proxies", nil, &out)
	return out.Proxies, err
}

// ClearProxy switches every fault of one proxy off and returns them.
func (c *AdminClient) ClearProxy(ctx context.Context, proxy string) ([]FaultInfo, error) {
	var out struct{ Cleared []FaultInfo }
	err := c.do(ctx, http.MethodDelete, "/api/v1/proxies/"+url.PathEscape(proxy)+"/faults", nil, &out)
	return out.Cleared, err
}

// Reset switches every fault of every proxy off and returns how many.
func (c *AdminClient) Reset(ctx context.Context) (int, error) {
	var out struct{ Cleared int }
	err := c.do(ctx, http.MethodPost, "/api/v1/reset", nil, &out)
	return out.Cleared, err
}

// Proxy returns one proxy with its active faults and guard policies.
func (c *AdminClient) Proxy(ctx context.Context, name string) (ProxyInfo, error) {
	var p ProxyInfo
	err := c.do(ctx, http.MethodGet, "/api/v1/proxies/"+url.PathEscape(name), nil, &p)
	return p, err
}

// RemoveFault switches one fault of a proxy off.
func (c *AdminClient) RemoveFault(ctx context.Context, proxy, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/proxies/"+url.PathEscape(proxy)+"/faults/"+url.PathEscape(id), nil, nil)
}

// Events returns the events recorded after the seq after (0 for all the
// log holds), oldest first, at most MaxEventsPage, and the seq to pass
// next time.
func (c *AdminClient) Events(ctx context.Context, after uint64) ([]Event, uint64, error) {
	var p EventsPage
	err := c.do(ctx, http.MethodGet, "/api/v1/events?after="+strconv.FormatUint(after, 10), nil, &p)
	return p.Events, p.Next, err
}

// Mark puts a note on the timeline, as an event.
func (c *AdminClient) Mark(ctx context.Context, text string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/marks", MarkRequest{Text: text}, nil)
}

// Traffic returns a proxy's completed seconds after the second after (-1
// for all it keeps).
func (c *AdminClient) Traffic(ctx context.Context, proxy string, after int64) (TrafficPage, error) {
	var p TrafficPage
	err := c.do(ctx, http.MethodGet, "/api/v1/proxies/"+url.PathEscape(proxy)+"/traffic?after="+strconv.FormatInt(after, 10), nil, &p)
	return p, err
}
