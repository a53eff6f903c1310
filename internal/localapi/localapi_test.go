package localapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/resctl/resctl/internal/localapi"
)

// TestProtect sends real requests over loopback to a protected handler:
// what a web page can send is refused with a JSON error, what resctl's
// clients (and, on lenient routes, Toxiproxy's) send passes.
func TestProtect(t *testing.T) {
	var served atomic.Int32
	h := localapi.Protect(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
		w.WriteHeader(http.StatusCreated)
	}), localapi.Options{
		AllowedHosts: []string{"Chaos.Example:8474"},
		Lenient:      func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/proxies") },
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]

	tests := []struct {
		name, method, path, body string
		header                   map[string]string
		host                     string
		want                     int
	}{
		{name: "json post", method: "POST", body: `{}`, header: map[string]string{"Content-Type": "application/json; charset=utf-8"}, want: 201},
		{name: "get needs no content type", method: "GET", want: 201},
		{name: "json delete", method: "DELETE", header: map[string]string{"Content-Type": "application/json"}, want: 201},
		{name: "cross-site text/plain post", method: "POST", body: `{}`, header: map[string]string{"Content-Type": "text/plain", "Origin": "https://evil.example"}, want: 403},
		{name: "text/plain post", method: "POST", body: `{}`, header: map[string]string{"Content-Type": "text/plain"}, want: 415},
		{name: "form post", method: "POST", body: `kind=abort`, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, want: 415},
		{name: "multipart post", method: "POST", body: `x`, header: map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, want: 415},
		{name: "post without content type", method: "POST", body: `{}`, want: 415},
		{name: "delete without content type", method: "DELETE", want: 415},
		{name: "origin on a json post", method: "POST", body: `{}`, header: map[string]string{"Content-Type": "application/json", "Origin": "null"}, want: 403},
		{name: "origin on a get", method: "GET", header: map[string]string{"Origin": "https://evil.example"}, want: 403},
		{name: "sec-fetch-site", method: "POST", body: `{}`, header: map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, want: 403},
		{name: "sec-fetch-mode", method: "GET", header: map[string]string{"Sec-Fetch-Mode": "no-cors"}, want: 403},
		{name: "browser user agent", method: "GET", header: map[string]string{"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120"}, want: 403},
		{name: "foreign host", method: "GET", host: "rebind.evil.example" + port, want: 403},
		{name: "foreign host json post", method: "POST", body: `{}`, header: map[string]string{"Content-Type": "application/json"}, host: "rebind.evil.example", want: 403},
		{name: "foreign address", method: "GET", host: "192.0.2.7" + port, want: 403},
		{name: "localhost", method: "GET", host: "localhost" + port, want: 201},
		{name: "localhost upper case without port", method: "GET", host: "LOCALHOST", want: 201},
		{name: "ipv6 loopback", method: "GET", host: "[::1]" + port, want: 201},
		{name: "other loopback address", method: "GET", host: "127.0.0.2", want: 201},
		{name: "allowed host, any port", method: "GET", host: "chaos.example:9999", want: 201},
		{name: "lenient text/plain post", method: "POST", path: "/proxies/db", body: `{"enabled": false}`, header: map[string]string{"Content-Type": "text/plain"}, want: 201},
		{name: "lenient delete without content type", method: "DELETE", path: "/proxies/db", want: 201},
		{name: "lenient post without content type but a body", method: "POST", path: "/proxies", body: `{}`, want: 415},
		{name: "lenient form post", method: "POST", path: "/proxies", body: `a=b`, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, want: 415},
		{name: "lenient cross-site text/plain post", method: "POST", path: "/proxies", body: `{}`, header: map[string]string{"Content-Type": "text/plain", "Origin": "https://evil.example"}, want: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			served.Store(0)
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.body == "" {
				req.Body, req.ContentLength = http.NoBody, 0
			}
			req.Header.Set("User-Agent", "resctl-test")
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want >= 400 {
				var e struct {
					Error  string
					Status int
				}
				if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Error == "" || e.Status != tt.want {
					t.Errorf("refusal is not a JSON error: %v %+v", err, e)
				}
				if served.Load() != 0 {
					t.Error("the handler ran for a refused request")
				}
			}
		})
	}
}
