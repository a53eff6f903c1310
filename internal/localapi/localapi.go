// Package localapi closes resctl's control APIs — the admin API of
// `resctl proxy` and `resctl run`, its Toxiproxy-compatible routes, and the
// runtime-fault agent mounted in services — to web pages. These APIs
// listen on loopback and switch faults on; without a check, any page a
// developer has open could drive them: a browser sends a cross-site form
// or text/plain POST without asking, and a page on a name that a DNS
// rebinding points at 127.0.0.1 reaches them as its own origin.
//
// Protect refuses what only a browser sends (an Origin header, Sec-Fetch-*
// headers, a browser's User-Agent), a Host that is not an address of the
// API (the name a rebinding uses), and a mutating request that is not
// application/json (the one content type a page cannot send cross-site
// without the server's consent). Refusals are JSON:
// {"error": "...", "status": code}.
//
// It imports nothing of resctl's, so the agent can mount it.
package localapi

import (
	"encoding/json"
	"mime"
	"net"
	"net/http"
	"strings"
)

// Options configure Protect.
type Options struct {
	// AllowedHosts are further names (or addresses) the Host header may
	// carry, with or without a port: the name of a machine whose API is
	// reached from elsewhere on purpose. Loopback names and the address
	// a request arrived at are always allowed.
	AllowedHosts []string
	// Lenient reports requests whose clients, not resctl's own, send a
	// mutating request as text/plain or, without a body, with no
	// Content-Type: Toxiproxy's official clients do. Form types stay
	// refused for them. Nil means none.
	Lenient func(*http.Request) bool
}

// Protect returns next behind the checks described in the package
// comment.
func Protect(next http.Handler, opts Options) http.Handler {
	allowed := map[string]bool{}
	for _, h := range opts.AllowedHosts {
		allowed[hostname(h)] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reason := browserSignal(r); reason != "" {
			refuse(w, http.StatusForbidden, "refused: the request "+reason+", as a web browser's does; this API serves programs, not web pages")
			return
		}
		if !hostAllowed(r, allowed) {
			refuse(w, http.StatusForbidden, "refused: Host "+quote(r.Host)+" is not an address of this API; "+
				"a name that resolves here is how a DNS rebinding reaches a local API (docs/security.md says how to allow one on purpose)")
			return
		}
		if mutating(r.Method) && !jsonBody(r, opts.Lenient != nil && opts.Lenient(r)) {
			refuse(w, http.StatusUnsupportedMediaType, r.Method+" needs Content-Type: application/json; got "+quote(r.Header.Get("Content-Type")))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// browserSignal names what marks r as sent by a browser, or "".
func browserSignal(r *http.Request) string {
	if _, ok := r.Header["Origin"]; ok {
		return "carries an Origin header"
	}
	for k := range r.Header {
		if strings.HasPrefix(k, "Sec-Fetch-") {
			return "carries a " + k + " header"
		}
	}
	if strings.HasPrefix(r.UserAgent(), "Mozilla/") {
		return "has a browser's User-Agent"
	}
	return ""
}

// hostAllowed reports whether r's Host names the API: a loopback name or
// address, the address the request arrived at, or an allowed name. A
// request without a Host (HTTP/1.0) names nothing a rebinding could use.
func hostAllowed(r *http.Request, allowed map[string]bool) bool {
	if r.Host == "" {
		return true
	}
	h := hostname(r.Host)
	if h == "localhost" || allowed[h] {
		return true
	}
	ip := net.ParseIP(h)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	lh, _, err := net.SplitHostPort(local.String())
	return err == nil && net.ParseIP(lh).Equal(ip)
}

// hostname is a Host header's or an allowed entry's name, lower case,
// without port or IPv6 brackets.
func hostname(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	return strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
}

func mutating(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// jsonBody reports whether a mutating request says it carries JSON; a
// lenient one may also say text/plain, or nothing when it has no body.
func jsonBody(r *http.Request, lenient bool) bool {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	switch {
	case err == nil && mt == "application/json":
		return true
	case !lenient:
		return false
	case ct == "":
		return r.ContentLength == 0
	}
	return err == nil && mt == "text/plain"
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func refuse(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(struct {
		Error  string `json:"error"`
		Status int    `json:"status"`
	}{msg, code})
}
