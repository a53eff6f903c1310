package session_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/internal/demo"
	"github.com/resctl/resctl/internal/version"
	"github.com/resctl/resctl/report"
	"github.com/resctl/resctl/runner"
	"github.com/resctl/resctl/scenario"
	"github.com/resctl/resctl/session"
)

// host is a demo target with a real harness proxy in front of it and the
// admin API, over loopback, as resctl proxy runs them.
type host struct {
	admin  *harness.AdminClient
	target string
	stop   func()
}

func startHost(t *testing.T, token string) host {
	t.Helper()
	srv, err := demo.Start("127.0.0.1:0", demo.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return startHostFor(t, srv.URL(), token)
}

func startHostFor(t *testing.T, target, token string) host {
	t.Helper()
	return startHostAt(t, "127.0.0.1:0", target, token)
}

func startHostAt(t *testing.T, adminListen, target, token string) host {
	t.Helper()
	return serveHost(t, target, harness.ServeOptions{
		Proxies:     []harness.ProxyConfig{{Name: "web", Listen: "127.0.0.1:0", Upstream: target, Protocol: harness.ProtocolHTTP}},
		AdminListen: adminListen, Token: token,
	})
}

// serveHost runs a standalone harness with opts until the test ends.
func serveHost(t *testing.T, target string, opts harness.ServeOptions) host {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan harness.Started, 1)
	done := make(chan error, 1)
	go func() {
		done <- harness.Serve(ctx, opts, func(s harness.Started) { ready <- s })
	}()
	var st harness.Started
	select {
	case st = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return host{admin: &harness.AdminClient{BaseURL: st.AdminURL, Token: opts.Token}, target: target, stop: stop}
}

// addTheirs adds a fault to the host's web proxy as someone other than
// the session would.
func addTheirs(t *testing.T, h host) {
	t.Helper()
	if _, err := h.admin.AddFault(context.Background(), "web", harness.FaultRequest{ID: "theirs", Kind: "latency", TTL: "1m", Params: json.RawMessage(`{"delay":"1ms"}`)}); err != nil {
		t.Fatal(err)
	}
}

func newSession(t *testing.T, h host, owned bool) *session.Session {
	t.Helper()
	s, err := session.New(context.Background(), session.Options{Admin: h.admin, Owned: owned, Target: h.target})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = s.Close(context.Background(), false) })
	return s
}

func exec(t *testing.T, s *session.Session, line string) string {
	t.Helper()
	out, err := s.ExecLine(context.Background(), line)
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return out
}

// A session saved as a scenario replays: it validates, resctl run runs it
// with the fault in the phase where the session had it, and the SLAs the
// session proposed from what it saw pass.
func TestSession_SaveReplays(t *testing.T) {
	// A target that takes 300 ms a request: the session's baseline, and
	// so the bounds it proposes, are the target's, with room for what a
	// busy machine adds in the replay.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(300 * time.Millisecond):
		case <-r.Context().Done():
		}
		_, _ = w.Write([]byte(`{"orders":[]}`))
	}))
	t.Cleanup(slow.Close)
	h := startHostFor(t, slow.URL, "")
	s := newSession(t, h, true)
	exec(t, s, "load 40/s 9s /api/orders")
	exec(t, s, "wait 3s")
	exec(t, s, "latency web 1s")
	exec(t, s, `mark "slow orders"`)
	exec(t, s, "wait 3s")
	if out := exec(t, s, "clear latency"); !strings.Contains(out, "cleared latency on web") {
		t.Errorf("clear: %q", out)
	}
	exec(t, s, "wait load")
	doc, err := s.Scenario()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("saved:\n%s", doc)
	sc, err := scenario.Parse("saved.yaml", doc)
	if err != nil {
		t.Fatalf("the saved scenario does not validate: %v", err)
	}
	var names []string
	for _, p := range sc.Phases {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "baseline,latency,recovery" {
		t.Fatalf("phases %v, want baseline, latency, recovery", names)
	}
	if len(sc.Phases[1].Faults) != 1 || len(sc.Phases[0].Faults)+len(sc.Phases[2].Faults) != 0 {
		t.Fatalf("the fault is not in the latency phase alone: %+v", sc.Phases)
	}
	if len(sc.SLAs) != 2 || !strings.Contains(string(doc), "# proposed:") || !strings.Contains(string(doc), "# mark at") {
		t.Errorf("want two proposed SLAs and the mark as comments")
	}

	r, err := runner.Run(context.Background(), sc, runner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sla := range r.SLAs {
		if !sla.Passed {
			t.Errorf("SLA %q failed in the replay: %s", sla.Name, sla.Observed)
		}
	}
	if !r.Passed {
		t.Error("the replay failed")
	}
	// The fault acted in the replay, where the session had it.
	if p := r.Phases[1]; p.LatencyMs.P50 < 1300 {
		t.Errorf("replay's latency phase p50 %.0fms: want ≥ 1300ms (the target's 300 and the fault's 1000)", p.LatencyMs.P50)
	}
	if p := r.Phases[0]; p.LatencyMs.P50 >= 1300 {
		t.Errorf("replay's baseline p50 %.0fms: the fault acted before its phase", p.LatencyMs.P50)
	}
}

// The session's report uses run's renderer: its phases, the fault with
// what it did, and the event log.
func TestSession_Report(t *testing.T) {
	h := startHost(t, "")
	s := newSession(t, h, true)
	exec(t, s, "load 50/s 4s /api/orders")
	exec(t, s, "wait 1s")
	exec(t, s, "abort web 503")
	exec(t, s, "wait 2s")
	s.Poll(context.Background()) // the fault's counts
	exec(t, s, "clear")
	exec(t, s, "wait load")
	r, err := s.BuildReport()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Phases) != 3 || r.Phases[1].Name != "abort" {
		t.Fatalf("phases %+v", r.Phases)
	}
	// Phases are cut at whole seconds of the session: the abort phase
	// begins at the second its command ran in, so it may hold a few
	// requests answered before the command took effect. A request counts
	// in the second it was due, so on a busy machine a few of the
	// baseline's, sent late, met the abort.
	if r.Phases[1].SuccessRate > 0.5 || r.Phases[0].SuccessRate < 0.9 {
		t.Errorf("success rates baseline %.2f, abort %.2f: want ~1 and ~0", r.Phases[0].SuccessRate, r.Phases[1].SuccessRate)
	}
	if len(r.Faults) != 1 || r.Faults[0].Injected == 0 || !r.Faults[0].Fired {
		t.Errorf("faults %+v: want the abort, fired", r.Faults)
	}
	if v := r.Verdict(); v != report.VerdictRecorded {
		t.Errorf("the session's verdict is %s: it judged nothing, want RECORDED", v)
	}
	var sb strings.Builder
	if err := report.WriteHTML(&sb, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), "chaos session · RECORDED") {
		t.Error("the HTML report's title does not say RECORDED")
	}
	raw, _ := json.Marshal(r)
	if !strings.Contains(string(raw), "added abort on web") {
		t.Errorf("the report's events lack the fault: %s", raw)
	}
}

// A session's report is filled as a run's is: each fault's configured and
// effective rates, the requests the load sent and was scheduled to send,
// and the version of resctl that wrote it; its charts show the marks.
func TestSession_ReportFillsWhatARunDoes(t *testing.T) {
	h := startHost(t, "")
	s := newSession(t, h, true)
	exec(t, s, "load 50/s 3s /api/orders")
	exec(t, s, "latency web 1ms 30%")
	exec(t, s, `mark "deploy v2"`)
	exec(t, s, "wait load")
	s.Poll(context.Background()) // the fault's counts, while it is on
	r, err := s.BuildReport()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Faults) != 1 {
		t.Fatalf("faults %+v: want the latency", r.Faults)
	}
	f := r.Faults[0]
	if f.Matched == 0 {
		t.Fatalf("fault %+v matched nothing", f)
	}
	if math.Abs(f.ConfiguredRate-0.3) > 1e-9 {
		t.Errorf("configured rate %v: want 0.3, as the command set it", f.ConfiguredRate)
	}
	if want := float64(f.Injected) / float64(f.Matched); f.EffectiveRate != want {
		t.Errorf("effective rate %v: want %v, injected %d of %d matched", f.EffectiveRate, want, f.Injected, f.Matched)
	}
	if f.Layer != "http" {
		t.Errorf("layer %q: want http, as a run names a fault on an http proxy", f.Layer)
	}
	var phased uint64
	for _, p := range r.Phases {
		phased += p.Requests
	}
	if r.Run.Sent == 0 || r.Run.Sent != phased || r.Run.Sent != r.Total.Requests {
		t.Errorf("run.sent %d: want the %d requests the phases count (total %d)", r.Run.Sent, phased, r.Total.Requests)
	}
	if r.Run.Scheduled == 0 {
		t.Errorf("run.scheduled is 0: the load's schedule asked for %d requests or so", phased)
	}
	if r.Version == "" || r.Version != version.String() {
		t.Errorf("resctl_version %q: want %q", r.Version, version.String())
	}
	var md strings.Builder
	if err := report.WriteMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d requests sent · resctl %s", phased, version.String()); !strings.Contains(md.String(), want) {
		t.Errorf("the Markdown report does not say %q:\n%s", want, md.String())
	}
	var page strings.Builder
	if err := report.WriteHTML(&page, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), `<line class="mark"`) || !strings.Contains(page.String(), ": deploy v2</title>") {
		t.Error("the HTML report's charts do not mark deploy v2")
	}
}

// Faults someone else adds and clears on an attached proxy are on the
// timeline too; quitting an attached session clears only its own.
func TestSession_AttachedSeesOthersAndClearsItsOwn(t *testing.T) {
	h := startHost(t, "")
	s := newSession(t, h, false)
	ctx := context.Background()
	addTheirs(t, h)
	exec(t, s, "abort web 500 1% id=mine")
	s.Poll(ctx)
	var mine, theirs bool
	for _, f := range s.Faults() {
		mine = mine || (f.ID == "mine" && f.Mine && f.Active())
		theirs = theirs || (f.ID == "theirs" && !f.Mine && f.Active())
	}
	if !mine || !theirs {
		t.Fatalf("timeline %+v: want mine and theirs, both on", s.Faults())
	}
	if n, err := s.Close(ctx, false); err != nil || n != 1 {
		t.Fatalf("Close cleared %d (%v): want 1", n, err)
	}
	ps, err := h.admin.Proxies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, f := range ps[0].Faults {
		left = append(left, f.ID)
	}
	if strings.Join(left, ",") != "theirs" {
		t.Errorf("faults left on the attached proxy: %v, want only theirs", left)
	}
}

// A fault on a proxy other than the front one is saved on that proxy,
// written under proxies: as the scenario reads it, and the scenario
// validates; a fault still on when the session is saved gets no recovery
// check, and the comment says why.
func TestSession_SaveOtherProxy(t *testing.T) {
	srv, err := demo.Start("127.0.0.1:0", demo.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	h := serveHost(t, srv.URL(), harness.ServeOptions{
		Proxies: []harness.ProxyConfig{
			{Name: "web", Listen: "127.0.0.1:0", Upstream: srv.URL(), Protocol: harness.ProtocolHTTP},
			{Name: "db", Listen: "127.0.0.1:0", Upstream: strings.TrimPrefix(srv.URL(), "http://"), Protocol: harness.ProtocolTCP},
		},
		AdminListen: "127.0.0.1:0",
	})
	ctx := context.Background()
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	s, err := session.New(ctx, session.Options{Admin: h.admin, Owned: true, Front: "web", Target: srv.URL(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = s.Close(context.Background(), false) })
	now = now.Add(2 * time.Second)
	exec(t, s, "blackhole db")
	now = now.Add(2 * time.Second)
	exec(t, s, "clear blackhole")
	now = now.Add(4 * time.Second)
	doc, err := s.Scenario()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := scenario.Parse("saved.yaml", doc); err != nil {
		t.Fatalf("the saved scenario does not validate: %v\n%s", err, doc)
	}
	for _, want := range []string{"proxies:\n  db:\n    protocol: tcp\n", "- blackhole: {proxy: db}", "name: recovers after the last fault"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("saved scenario lacks %q:\n%s", want, doc)
		}
	}
	// A fault still on at the end: no recovery to propose, and the
	// comment says why.
	exec(t, s, "latency web 5ms")
	now = now.Add(3 * time.Second)
	doc, err = s.Scenario()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "# no recovery check: a fault was still on when the session's window ended") {
		t.Errorf("a fault on at the end:\n%s", doc)
	}
}

// Quitting an attached session and keeping its faults leaves every fault
// on the proxy as it was: the session's own until their TTLs, and someone
// else's untouched.
func TestSession_CloseKeepTouchesNothing(t *testing.T) {
	h := startHost(t, "")
	s := newSession(t, h, false)
	ctx := context.Background()
	addTheirs(t, h)
	exec(t, s, "abort web 500 1% id=mine")
	if n, err := s.Close(ctx, true); err != nil || n != 0 {
		t.Fatalf("Close keeping the faults cleared %d (%v): want 0", n, err)
	}
	ps, err := h.admin.Proxies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, f := range ps[0].Faults {
		left = append(left, f.ID)
	}
	if strings.Join(left, ",") != "mine,theirs" && strings.Join(left, ",") != "theirs,mine" {
		t.Errorf("faults left on the attached proxy: %v, want mine and theirs", left)
	}
}

// A fault the session clears while a poll's list of faults is on its way
// ends once: the poll, which asked before the clear, does not take the
// fault it still lists for one someone else added.
func TestSession_ClearDuringPoll(t *testing.T) {
	h := startHost(t, "")
	admin, err := url.Parse(h.admin.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	through := httputil.NewSingleHostReverseProxy(admin)
	var hold atomic.Bool
	asked, release := make(chan struct{}), make(chan struct{})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/api/v1/proxies" || !hold.CompareAndSwap(true, false) {
			through.ServeHTTP(w, r)
			return
		}
		// The list as it was when asked, answered after the clear.
		rec := httptest.NewRecorder()
		through.ServeHTTP(rec, r)
		close(asked)
		<-release
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(front.Close)
	s := newSession(t, host{admin: &harness.AdminClient{BaseURL: front.URL}, target: h.target}, true)
	exec(t, s, "latency web 1ms")
	hold.Store(true)
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		s.Poll(context.Background())
	}()
	<-asked
	exec(t, s, "clear latency")
	close(release)
	<-polled
	if fs := s.Faults(); len(fs) != 1 || fs[0].Active() {
		t.Errorf("timeline %+v: want the latency once, cleared", fs)
	}
}

// A load's end says how its requests fared: on a path the target does not
// serve, every one failed with a 404, which the proxy's error rate (5xx)
// does not show.
func TestSession_LoadDoneSaysHowItFared(t *testing.T) {
	h := startHost(t, "")
	s := newSession(t, h, true)
	exec(t, s, "load 20/s 1s /no/such/path")
	exec(t, s, "wait load")
	var done string
	for _, l := range s.Lines() {
		if l.Source == "load" && strings.HasPrefix(l.Text, "done:") {
			done = l.Text
		}
	}
	if !strings.Contains(done, "0.0% succeeded (most failed with status: 404: ") {
		t.Errorf("load's end: %q, want 0.0%% succeeded and the 404s", done)
	}
}

// Bad input changes nothing: a misspelt command, an unknown proxy, a
// parameter the fault refuses, a for= over harness.MaxFaultTTL, each one
// line with a hint.
func TestSession_BadInputTouchesNothing(t *testing.T) {
	h := startHost(t, "")
	s := newSession(t, h, true)
	exec(t, s, "latency web 5ms")
	for line, want := range map[string]string{
		"latncy web 1s":       "did you mean latency?",
		"abort nope 503":      `no proxy "nope" (proxies: web`,
		"latency web 1s 150%": "percent",
		"abort web for=1000h": "for=1000h0m0s: at most 24h0m0s",
		"clear ghost":         `no active fault or proxy "ghost"`,
		"blackhole web":       "tcp",
		"goroutines target 5": "no agent",
		"report out.pdf":      "name the file .html",
	} {
		_, err := s.ExecLine(context.Background(), line)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", line, err, want)
		}
	}
	ps, _ := h.admin.Proxies(context.Background())
	if len(ps[0].Faults) != 1 || ps[0].Faults[0].ID != "latency" {
		t.Errorf("faults after bad input: %+v, want the latency alone", ps[0].Faults)
	}
}

// A poll its driver cancels (script mode ending while a poll is out) says
// nothing about the admin API, which still answers.
func TestSession_CancelledPollIsSilent(t *testing.T) {
	h := startHost(t, "")
	s := newSession(t, h, true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if lines := s.Poll(ctx); len(lines) != 0 {
		t.Errorf("a cancelled poll: %v, want no line", lines)
	}
	if lines := s.Poll(context.Background()); len(lines) != 0 {
		t.Errorf("the poll after: %v, want no line", lines)
	}
}

// A wrong token is refused at the start with the reason; an admin API that
// goes away is one line, not one per poll.
func TestSession_TokenAndUnreachable(t *testing.T) {
	h := startHost(t, "s3cret-token-of-length")
	_, err := session.New(context.Background(), session.Options{Admin: &harness.AdminClient{BaseURL: h.admin.BaseURL, Token: "wrong"}})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: %v, want a 401", err)
	}
	s := newSession(t, h, true)
	h.stop()
	first := s.Poll(context.Background())
	if len(first) != 1 || !strings.Contains(first[0].Text, "does not answer") {
		t.Fatalf("first poll after the admin API went away: %v", first)
	}
	if again := s.Poll(context.Background()); len(again) != 0 {
		t.Errorf("second poll: %v, want nothing new", again)
	}
	if _, err := s.ExecLine(context.Background(), "latency web 1s"); err == nil || !strings.Contains(err.Error(), "still up") {
		t.Errorf("a fault with the admin API gone: %v", err)
	}
}

// An admin API that restarts (resctl proxy stopped and started again on
// the same address) is picked up again: the session says so, and the
// faults the restart dropped are off on its timeline.
func TestSession_AdminRestarted(t *testing.T) {
	h := startHost(t, "")
	s := newSession(t, h, false)
	exec(t, s, "latency web 5ms")
	addr := strings.TrimPrefix(h.admin.BaseURL, "http://")
	h.stop()
	if l := s.Poll(context.Background()); len(l) != 1 || !strings.Contains(l[0].Text, "does not answer") {
		t.Fatalf("poll with the admin API down: %v", l)
	}
	startHostAt(t, addr, h.target, "")
	l := s.Poll(context.Background())
	var text []string
	for _, x := range l {
		text = append(text, x.Text)
	}
	if !strings.Contains(strings.Join(text, "\n"), "answers again") {
		t.Errorf("poll after the restart: %v", text)
	}
	for _, f := range s.Faults() {
		if f.Active() {
			t.Errorf("fault %s still on after the admin API restarted without it", f.ID)
		}
	}
	// The session goes on: a fault on the new proxy.
	exec(t, s, "abort web 503 1%")
}

// A proxy's guard transitions are lines of the session and events of its
// report with the policy's kind, as the policies of a proxy share its
// name: the report reads "breaker web: closed → open" as the breaker's.
func TestSession_GuardTransitionsNameTheirKind(t *testing.T) {
	srv, err := demo.Start("127.0.0.1:0", demo.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	specs, err := guard.Parse([]byte("- breaker: {consecutive_failures: 2, open_for: 10m, backoff: {max: 10m}}\n- retry: {attempts: 1}\n"), "web")
	if err != nil {
		t.Fatal(err)
	}
	h := serveHost(t, srv.URL(), harness.ServeOptions{
		Proxies:     []harness.ProxyConfig{{Name: "web", Listen: "127.0.0.1:0", Upstream: srv.URL(), Protocol: harness.ProtocolHTTP, Guard: specs}},
		AdminListen: "127.0.0.1:0",
	})
	s := newSession(t, h, true)
	exec(t, s, "abort web 503")
	exec(t, s, "load 20/s 1s /api/orders")
	exec(t, s, "wait load")
	// The breaker opened at the second answer of twenty, which came back
	// before the load ended.
	s.Poll(context.Background())
	var lines []string
	for _, l := range s.Lines() {
		if l.Source == "guard" {
			lines = append(lines, l.Text)
		}
	}
	if len(lines) != 1 || lines[0] != "breaker web on web: closed → open" {
		t.Fatalf("the session's guard lines are %q, want one, the breaker's on web", lines)
	}
	r, err := s.BuildReport()
	if err != nil {
		t.Fatal(err)
	}
	var details []string
	for _, e := range r.Events {
		if e.Source == "guard" {
			details = append(details, e.Detail)
		}
	}
	if len(details) != 1 || details[0] != "breaker web: closed → open" {
		t.Errorf("the report's guard events are %q, want one, the breaker's", details)
	}
}

// A script prints its lines in time order: a load that ended during a
// wait says so before the next command's answer, not at the next poll.
func TestRunScript_LinesInTimeOrder(t *testing.T) {
	h := startHost(t, "")
	s := newSession(t, h, true)
	var out strings.Builder
	script := "load 20/s 1s /api/orders\nwait load\nmark \"after the load\"\n"
	if _, err := session.RunScript(context.Background(), s, strings.NewReader(script), &out, time.Hour); err != nil {
		t.Fatal(err)
	}
	done, mark := strings.Index(out.String(), "done: "), strings.Index(out.String(), "after the load")
	if done < 0 || mark < 0 || done > mark {
		t.Errorf("script output:\n%s\nwant the load's end before the mark", out.String())
	}
}
