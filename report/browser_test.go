//go:build unix

package report

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The browser test loads report.html in headless Chromium and checks what
// only a browser can: that the charts lay out with non-empty shapes, that
// the tooltip script runs, that the page logs no error and fetches nothing.
// Chromium is driven over the DevTools protocol through
// --remote-debugging-pipe (fds 3 and 4, NUL-separated JSON), which needs
// no WebSocket client and no free port.

// browserEnv makes the test mandatory: with RESCTL_BROWSER_TEST=1 a missing
// Chromium is a failure, not a skip, so CI cannot pass without running it.
const browserEnv = "RESCTL_BROWSER_TEST"

func chromiumPath() string {
	if p := os.Getenv("RESCTL_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func TestHTML_Browser(t *testing.T) {
	bin := chromiumPath()
	if bin == "" {
		if os.Getenv(browserEnv) == "1" {
			t.Fatalf("%s=1 but no chromium on PATH: install it (apt-get install chromium) or set RESCTL_CHROMIUM", browserEnv)
		}
		t.Skipf("chromium not found: skipping the browser test (install chromium and run make test-browser; %s=1 makes this a failure)", browserEnv)
	}
	dir := t.TempDir()
	pages := []struct {
		name   string
		report *Report
		charts int // timeline charts and panels expected
		// explained: its failed SLAs carry checks (limits, breaches,
		// deadlines) to draw, as a run's report does.
		explained bool
	}{
		{"simple", fixture(), 2, false},
		{"rich", richFixture(), 4, false},
		{"one hour", oneHourFixture(20), 6, false},
		{"failing", failingRunFixture(), 3, true},
		{"timing", timingFixture(), 3, true},
		{"scraped", scrapedFixture(), 4, true},
	}
	b := startBrowser(t, bin, dir)
	for _, p := range pages {
		t.Run(p.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(p.name, " ", "-")+".html")
			if err := os.WriteFile(path, renderHTML(t, p.report), 0o644); err != nil {
				t.Fatal(err)
			}
			res := b.load(t, "file://"+path, 0)
			for _, e := range res.problems {
				t.Errorf("browser: %s", e)
			}
			if len(res.page.Charts) != p.charts {
				t.Errorf("page has %d charts, want %d", len(res.page.Charts), p.charts)
			}
			for _, c := range res.page.Charts {
				if c.W < 300 || c.H < 50 {
					t.Errorf("chart %s is %gx%g px: not laid out", c.ID, c.W, c.H)
				}
				if c.Shapes == 0 {
					t.Errorf("chart %s draws no visible shape", c.ID)
				}
			}
			if res.page.Lanes == 0 {
				t.Error("no lane segment drawn")
			}
			if !strings.Contains(res.page.Tip, "/s") {
				t.Errorf("hovering the throughput chart shows %q, want per-second values", res.page.Tip)
			}
			if res.page.Verdict != string(p.report.Verdict()) {
				t.Errorf("verdict shown %q, want %q", res.page.Verdict, p.report.Verdict())
			}
			if !res.page.Zoomed {
				t.Error("dragging across the throughput chart did not zoom the timeline")
			}
			if len(failures(p.report)) > 0 && res.page.Banner == "" {
				t.Error("no failure banner shown")
			}
			if !p.explained {
				return
			}
			// A failure must show at once: the limit it broke and the
			// seconds that broke it.
			if res.page.Limits == 0 {
				t.Error("no SLA limit line drawn")
			}
			if res.page.Breaches == 0 && p.name != "timing" {
				t.Error("no breach shaded")
			}
			if res.page.Deadlines == 0 && p.name == "timing" {
				t.Error("no timing deadline drawn")
			}
		})
	}
	// At 700 px the SLA table keeps every column readable, and fits.
	t.Run("narrow", func(t *testing.T) {
		path := filepath.Join(dir, "narrow.html")
		r := scrapedFixture()
		r.SLAs[0].Name = "the service's own breaker opened within two seconds of the payments API slowing down"
		if err := os.WriteFile(path, renderHTML(t, r), 0o644); err != nil {
			t.Fatal(err)
		}
		res := b.load(t, "file://"+path, 700)
		for _, e := range res.problems {
			t.Errorf("browser: %s", e)
		}
		const minCol = 30
		if len(res.page.SLACols) != 6 {
			t.Fatalf("SLA table has %d columns, want 6", len(res.page.SLACols))
		}
		for i, w := range res.page.SLACols {
			if w < minCol {
				t.Errorf("SLA column %d is %.0f px wide at 700 px, under %d", i+1, w, minCol)
			}
		}
		if res.page.SLAOverflow > 1 {
			t.Errorf("SLA table overflows its section by %.0f px at 700 px", res.page.SLAOverflow)
		}
		if res.page.NameLines > 3 {
			t.Errorf("a short SLA name takes %d lines: squeezed", res.page.NameLines)
		}
	})
}

// pageCheck is what the in-page probe measures.
type pageCheck struct {
	Verdict string `json:"verdict"`
	Charts  []struct {
		ID     string  `json:"id"`
		W      float64 `json:"w"`
		H      float64 `json:"h"`
		Shapes int     `json:"shapes"`
	} `json:"charts"`
	Lanes     int       `json:"lanes"`
	Tip       string    `json:"tip"`
	Banner    string    `json:"banner"`
	Limits    int       `json:"limits"`
	Breaches  int       `json:"breaches"`
	Deadlines int       `json:"deadlines"`
	Zoomed    bool      `json:"zoomed"`
	SLACols   []float64 `json:"slaCols"`
	// SLAOverflow is how far the SLA table reaches past its section.
	SLAOverflow float64 `json:"slaOverflow"`
	// NameLines is how many lines the SLA name "no goroutine pile-up" takes.
	NameLines int `json:"nameLines"`
}

// probe runs in the page after load: it measures every chart's laid-out
// size and its shapes with a non-empty bounding box, and moves the mouse
// over the throughput chart's first second to run the tooltip script.
const probe = `(() => {
  const out = {verdict: document.getElementById("verdict").textContent, charts: [], lanes: 0, tip: ""};
  document.querySelectorAll("figure.chart").forEach(f => {
    const svg = f.querySelector("svg"), r = svg.getBoundingClientRect();
    const shapes = Array.from(svg.querySelectorAll("path")).filter(p => { const b = p.getBBox(); return b.width > 0 || b.height > 0; });
    out.charts.push({id: f.id, w: r.width, h: r.height, shapes: shapes.length});
  });
  out.lanes = Array.from(document.querySelectorAll("svg.lanes rect")).filter(r => r.getBBox().width > 0 && !r.classList.contains("band")).length;
  const svg = document.querySelector("svg[data-tip='throughput']"), r = svg.getBoundingClientRect();
  svg.dispatchEvent(new MouseEvent("mousemove", {clientX: r.left + r.width * 66 / 960, clientY: r.top + r.height / 2, bubbles: true}));
  const tip = document.getElementById("tip");
  out.tip = tip.hidden ? "" : tip.textContent;
  const visible = el => { const b = el.getBoundingClientRect(); return b.width > 0 && b.height > 0; };
  const banner = document.getElementById("failures");
  out.banner = banner && visible(banner) ? banner.textContent : "";
  out.limits = Array.from(document.querySelectorAll("g.limit line")).filter(l => l.getBBox().width > 0).length;
  out.breaches = Array.from(document.querySelectorAll("rect.breach")).filter(r => r.getBBox().width > 0).length;
  out.deadlines = Array.from(document.querySelectorAll("line.deadline")).filter(l => l.getBBox().height > 0).length;
  out.slaCols = Array.from(document.querySelectorAll("#slas thead th")).map(th => th.getBoundingClientRect().width);
  const table = document.querySelector("#slas table");
  out.slaOverflow = table ? table.scrollWidth - document.getElementById("slas").clientWidth : 0;
  const name = Array.from(document.querySelectorAll("#slas tbody td:nth-child(2)")).find(td => td.textContent === "no goroutine pile-up");
  if (name) { out.nameLines = Math.round(name.getBoundingClientRect().height / parseFloat(getComputedStyle(name).lineHeight)); }
  svg.dispatchEvent(new MouseEvent("mousedown", {clientX: r.left + r.width * 0.3, clientY: r.top + r.height / 2, bubbles: true}));
  svg.dispatchEvent(new MouseEvent("mousemove", {clientX: r.left + r.width * 0.5, clientY: r.top + r.height / 2, bubbles: true}));
  svg.dispatchEvent(new MouseEvent("mouseup", {clientX: r.left + r.width * 0.5, clientY: r.top + r.height / 2, bubbles: true}));
  out.zoomed = document.body.classList.contains("zoomed");
  return JSON.stringify(out);
})()`

type loadResult struct {
	page     pageCheck
	problems []string
}

// browser is one headless Chromium driven over the DevTools protocol.
type browser struct {
	w       io.Writer
	mu      sync.Mutex
	nextID  int
	pending map[int]chan cdpMsg
	events  []cdpMsg
	notify  chan struct{}
	readErr error
}

type cdpMsg struct {
	ID        int             `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Error     *struct {
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// startBrowser starts Chromium in its own process group, which t.Cleanup
// kills whole: Chromium forks zygote and renderer processes, and none may
// outlive the test.
func startBrowser(t *testing.T, bin, dir string) *browser {
	t.Helper()
	toChrome, ourW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ourR, fromChrome, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--disable-default-apps", "--mute-audio", "--hide-scrollbars", "--window-size=1200,900",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--remote-debugging-pipe", "about:blank")
	cmd.ExtraFiles = []*os.File{toChrome, fromChrome} // fds 3 and 4
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	toChrome.Close()
	fromChrome.Close()
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }()
	b := &browser{w: ourW, pending: map[int]chan cdpMsg{}, notify: make(chan struct{}, 1)}
	t.Cleanup(func() {
		// Closed politely, Chromium reaps its own children; killed, they
		// would be orphans left for init to reap. The group kill is for
		// a browser that does not answer.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.call(ctx, "", "Browser.close", map[string]any{}, nil)
		select {
		case <-waited:
		case <-time.After(5 * time.Second):
		}
		ourW.Close()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-waited:
		case <-time.After(10 * time.Second):
			t.Errorf("chromium (pid %d) did not exit after SIGKILL", cmd.Process.Pid)
		}
		ourR.Close()
		t.Logf("chromium ran %v", time.Since(start).Round(time.Millisecond))
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("chromium stderr:\n%s", lastLines(stderr.String(), 20))
		}
	})
	go b.read(ourR)
	return b
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func (b *browser) read(r io.Reader) {
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		raw, err := br.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			b.readErr = fmt.Errorf("devtools pipe: %w", err)
			for id, ch := range b.pending {
				close(ch)
				delete(b.pending, id)
			}
			b.mu.Unlock()
			b.wake()
			return
		}
		var m cdpMsg
		if err := json.Unmarshal(raw[:len(raw)-1], &m); err != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			if ch, ok := b.pending[m.ID]; ok {
				ch <- m
				delete(b.pending, m.ID)
			}
		} else {
			b.events = append(b.events, m)
		}
		b.mu.Unlock()
		b.wake()
	}
}

func (b *browser) wake() {
	select {
	case b.notify <- struct{}{}:
	default:
	}
}

// call sends one command and waits for its result.
func (b *browser) call(ctx context.Context, session, method string, params, result any) error {
	b.mu.Lock()
	if b.readErr != nil {
		b.mu.Unlock()
		return b.readErr
	}
	b.nextID++
	id := b.nextID
	ch := make(chan cdpMsg, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	msg, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params, "sessionId": session})
	if err != nil {
		return err
	}
	if session == "" {
		msg, _ = json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	}
	if _, err := b.w.Write(append(msg, 0)); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return fmt.Errorf("%s: %w", method, b.readErr)
		}
		if m.Error != nil {
			return fmt.Errorf("%s: %s", method, m.Error.Message)
		}
		if result != nil {
			return json.Unmarshal(m.Result, result)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// waitEvent waits for an event of the session, scanning from index from of
// the event log; it returns the index after the match.
func (b *browser) waitEvent(ctx context.Context, session, method string, from int) (int, error) {
	for {
		b.mu.Lock()
		for i := from; i < len(b.events); i++ {
			if b.events[i].SessionID == session && b.events[i].Method == method {
				b.mu.Unlock()
				return i + 1, nil
			}
		}
		from = len(b.events)
		err := b.readErr
		b.mu.Unlock()
		if err != nil {
			return from, err
		}
		select {
		case <-b.notify:
		case <-ctx.Done():
			return from, fmt.Errorf("waiting for %s: %w", method, ctx.Err())
		}
	}
}

// load opens url in a fresh tab, width CSS pixels wide (0: the window's
// width), waits for it to load, runs the probe and collects console
// errors, exceptions and network requests.
func (b *browser) load(t *testing.T, url string, width int) loadResult {
	t.Helper()
	// Only a hang guard: Chromium's first page waits for its start-up,
	// which takes minutes on a machine busy with other work.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		t.Fatal(err)
	}
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached); err != nil {
		t.Fatal(err)
	}
	s := attached.SessionID
	for _, domain := range []string{"Runtime.enable", "Log.enable", "Page.enable", "Network.enable"} {
		if err := b.call(ctx, s, domain, map[string]any{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if width > 0 {
		if err := b.call(ctx, s, "Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": false}, nil); err != nil {
			t.Fatal(err)
		}
	}
	b.mu.Lock()
	mark := len(b.events)
	b.mu.Unlock()
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	if err := b.call(ctx, s, "Page.navigate", map[string]any{"url": url}, &nav); err != nil {
		t.Fatal(err)
	}
	if nav.ErrorText != "" {
		t.Fatalf("navigate to %s: %s", url, nav.ErrorText)
	}
	if _, err := b.waitEvent(ctx, s, "Page.loadEventFired", mark); err != nil {
		t.Fatal(err)
	}
	var eval struct {
		Result struct {
			Value string `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := b.call(ctx, s, "Runtime.evaluate", map[string]any{"expression": probe, "returnByValue": true}, &eval); err != nil {
		t.Fatal(err)
	}
	if eval.ExceptionDetails != nil {
		t.Fatalf("probe failed: %s %s", eval.ExceptionDetails.Text, eval.ExceptionDetails.Exception.Description)
	}
	var res loadResult
	if err := json.Unmarshal([]byte(eval.Result.Value), &res.page); err != nil {
		t.Fatalf("probe result %q: %v", eval.Result.Value, err)
	}
	// A round trip after the probe, so every event the page raised before
	// it has been read.
	if err := b.call(ctx, s, "Runtime.evaluate", map[string]any{"expression": "1"}, nil); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	events := append([]cdpMsg(nil), b.events[mark:]...)
	b.mu.Unlock()
	for _, e := range events {
		if e.SessionID != s {
			continue
		}
		if p := pageProblem(e); p != "" {
			res.problems = append(res.problems, p)
		}
	}
	if err := b.call(ctx, "", "Target.closeTarget", map[string]any{"targetId": target.TargetID}, nil); err != nil {
		t.Error(err)
	}
	return res
}

// pageProblem says what is wrong in a DevTools event, if anything: a
// console error, an uncaught exception, a log entry of level error, or a
// request for anything that is not the file itself.
func pageProblem(e cdpMsg) string {
	switch e.Method {
	case "Runtime.consoleAPICalled":
		var p struct {
			Type string `json:"type"`
			Args []struct {
				Value       any    `json:"value"`
				Description string `json:"description"`
			} `json:"args"`
		}
		_ = json.Unmarshal(e.Params, &p)
		if p.Type == "error" || p.Type == "assert" {
			return fmt.Sprintf("console.%s: %v", p.Type, p.Args)
		}
	case "Runtime.exceptionThrown":
		var p struct {
			ExceptionDetails struct {
				Text      string `json:"text"`
				Exception struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
		}
		_ = json.Unmarshal(e.Params, &p)
		return "uncaught exception: " + p.ExceptionDetails.Text + " " + p.ExceptionDetails.Exception.Description
	case "Log.entryAdded":
		var p struct {
			Entry struct {
				Level, Text, URL string
			} `json:"entry"`
		}
		_ = json.Unmarshal(e.Params, &p)
		if p.Entry.Level == "error" {
			return "log error: " + p.Entry.Text + " " + p.Entry.URL
		}
	case "Network.requestWillBeSent":
		var p struct {
			Request struct {
				URL string `json:"url"`
			} `json:"request"`
		}
		_ = json.Unmarshal(e.Params, &p)
		if u := p.Request.URL; !strings.HasPrefix(u, "file://") && !strings.HasPrefix(u, "data:") && u != "about:blank" {
			return "the page requested " + u
		}
	}
	return ""
}
