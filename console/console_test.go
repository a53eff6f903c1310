package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/session"
)

// fakeClock is the console's injected clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// newModel is a console over a real session: a real harness proxy named
// web in front of a real HTTP server, through its admin API.
func newModel(t *testing.T, attached bool, color bool) (*Model, *harness.AdminClient, *fakeClock) {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	t.Cleanup(up.Close)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan harness.Started, 1)
	done := make(chan error, 1)
	go func() {
		done <- harness.Serve(ctx, harness.ServeOptions{
			Proxies:     []harness.ProxyConfig{{Name: "web", Listen: "127.0.0.1:0", Upstream: up.URL, Protocol: harness.ProtocolHTTP}},
			AdminListen: "127.0.0.1:0",
		}, func(s harness.Started) { ready <- s })
	}()
	var st harness.Started
	select {
	case st = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-done })
	admin := &harness.AdminClient{BaseURL: st.AdminURL}
	clk := &fakeClock{t: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
	s, err := session.New(ctx, session.Options{Admin: admin, Owned: !attached, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = s.Close(context.Background(), false) })
	m := New(ctx, s, Options{AdminURL: st.AdminURL, Attached: attached, Color: color, Now: clk.now})
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	return m, admin, clk
}

// typeLine types a command and presses Enter, then carries out the command
// the model asked for and hands it its result, as bubbletea would.
func typeLine(t *testing.T, m *Model, line string) {
	t.Helper()
	for _, r := range line {
		m.Update(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	_, cmd := m.Update(tea.KeyPressMsg{Code: tea.KeyEnter})
	if cmd == nil {
		t.Fatalf("%q: no command to run", line)
	}
	m.Update(cmd())
}

func screen(m *Model) string { return ansi.Strip(m.View().Content) }

func checkFits(t *testing.T, view string, w, h int) {
	t.Helper()
	lines := strings.Split(view, "\n")
	if len(lines) > h {
		t.Errorf("%d lines on a %d-line terminal", len(lines), h)
	}
	for i, l := range lines {
		if n := ansi.StringWidth(l); n > w {
			t.Errorf("line %d is %d cells on a %d-cell terminal: %q", i, n, w, l)
		}
	}
}

func TestModel_FaultCommandShowsAndActs(t *testing.T) {
	m, admin, _ := newModel(t, false, false)
	typeLine(t, m, "latency web 200ms 30%")
	v := screen(m)
	for _, want := range []string{"faults (1)", "latency on web", "delay=200ms percent=30", "added latency on web"} {
		if !strings.Contains(v, want) {
			t.Errorf("screen lacks %q:\n%s", want, v)
		}
	}
	checkFits(t, v, 80, 24)
	// The command line's example names the session's own proxy.
	m.input.SetValue("")
	if v := screen(m); !strings.Contains(v, "latency web 200ms 30%, load") {
		t.Errorf("the placeholder does not name the proxy web:\n%s", v)
	}
	ps, err := admin.Proxies(context.Background())
	if err != nil || len(ps[0].Faults) != 1 || ps[0].Faults[0].Kind != "latency" {
		t.Fatalf("admin API: %+v %v, want the latency fault", ps, err)
	}
	// F2 switches the selected fault off.
	_, cmd := m.Update(tea.KeyPressMsg{Code: tea.KeyF2})
	m.Update(cmd())
	if ps, _ := admin.Proxies(context.Background()); len(ps[0].Faults) != 0 {
		t.Errorf("after F2 the proxy still has %+v", ps[0].Faults)
	}
	if v := screen(m); !strings.Contains(v, "faults (0)") || !strings.Contains(v, "delay=200ms percent=30  off") {
		t.Errorf("after F2:\n%s", v)
	}
	// F2 again switches it back on, as it was.
	_, cmd = m.Update(tea.KeyPressMsg{Code: tea.KeyF2})
	m.Update(cmd())
	ps, _ = admin.Proxies(context.Background())
	if len(ps[0].Faults) != 1 || ps[0].Faults[0].Kind != "latency" {
		t.Errorf("after F2 twice the proxy has %+v, want the latency again", ps[0].Faults)
	}
	if v := screen(m); !strings.Contains(v, "faults (1)") {
		t.Errorf("after F2 twice:\n%s", v)
	}
}

func TestModel_BadInputIsOneLine(t *testing.T) {
	m, admin, _ := newModel(t, false, false)
	typeLine(t, m, "latency web 5ms")
	typeLine(t, m, "latncy web 1s")
	v := screen(m)
	if !strings.Contains(v, `did you mean latency?`) {
		t.Errorf("no did-you-mean:\n%s", v)
	}
	typeLine(t, m, "abort nope 503")
	if v := screen(m); !strings.Contains(v, `no proxy "nope"`) || m.quitting {
		t.Errorf("unknown proxy:\n%s", v)
	}
	if ps, _ := admin.Proxies(context.Background()); len(ps[0].Faults) != 1 {
		t.Errorf("bad input touched the faults: %+v", ps[0].Faults)
	}
}

// An answer of several lines (help, faults) shows whole where the event log
// is, until Esc or the next command.
func TestModel_AnswerOfSeveralLines(t *testing.T) {
	m, _, _ := newModel(t, false, false)
	typeLine(t, m, "help abort")
	v := screen(m)
	for _, want := range []string{"─ help abort · Esc closes", "bare values: a whole number is status", "docs/faults.md#abort", "3 lines above"} {
		if !strings.Contains(v, want) {
			t.Errorf("screen lacks %q:\n%s", want, v)
		}
	}
	m.Update(tea.KeyPressMsg{Code: tea.KeyEscape})
	if v := screen(m); !strings.Contains(v, "─ events") || strings.Contains(v, "bare values") {
		t.Errorf("after Esc the events are back:\n%s", v)
	}
	typeLine(t, m, "help")
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	v = screen(m)
	checkFits(t, v, 100, 30)
	if !strings.Contains(v, "Faults: KIND PROXY") || !strings.Contains(v, "F4 pauses the view") {
		t.Errorf("help at 100x30:\n%s", v)
	}
	// On a smaller terminal what does not fit says so.
	m.Update(tea.WindowSizeMsg{Width: 60, Height: 16})
	v = screen(m)
	checkFits(t, v, 60, 16)
	if !strings.Contains(v, "Faults: KIND PROXY") || !strings.Contains(v, "more lines: a taller terminal shows them") {
		t.Errorf("help at 60x16:\n%s", v)
	}
	typeLine(t, m, "mark next")
	if v := screen(m); !strings.Contains(v, "─ events") {
		t.Errorf("the next command brings the events back:\n%s", v)
	}
}

func TestModel_Sizes(t *testing.T) {
	m, _, _ := newModel(t, false, false)
	typeLine(t, m, "abort web 503 10% path=/api/with/a/rather/long/path/that/would/not/fit/in/eighty/columns")
	for _, sz := range [][2]int{{80, 24}, {132, 43}, {60, 16}} {
		m.Update(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		v := screen(m)
		checkFits(t, v, sz[0], sz[1])
		if !strings.Contains(v, "resctl chaos") || !strings.Contains(v, "abort on web") {
			t.Errorf("%dx%d:\n%s", sz[0], sz[1], v)
		}
		// Section rules are drawn across, not cut short with an ellipsis.
		for _, l := range strings.Split(v, "\n") {
			if strings.HasPrefix(l, "─ events") && strings.HasSuffix(l, "…") {
				t.Errorf("%dx%d: the events rule is cut: %q", sz[0], sz[1], l)
			}
		}
	}
	// A larger terminal gives the sparklines and the log more room.
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	small := strings.Count(screen(m), "▁")
	m.Update(tea.WindowSizeMsg{Width: 160, Height: 50})
	if big := strings.Count(screen(m), "▁"); big <= small {
		t.Errorf("sparklines at 160 columns (%d cells) are no wider than at 80 (%d)", big, small)
	}
	m.Update(tea.WindowSizeMsg{Width: 50, Height: 10})
	v := screen(m)
	if !strings.Contains(v, "too small") || !strings.Contains(v, "60×16") {
		t.Errorf("50x10: want the size the console needs:\n%s", v)
	}
	checkFits(t, v, 50, 10)
}

func TestModel_Color(t *testing.T) {
	plain, _, _ := newModel(t, false, false)
	typeLine(t, plain, "latncy")
	if v := plain.View().Content; colorSGR.MatchString(v) {
		t.Errorf("NO_COLOR: the view has colors: %q", colorSGR.FindString(v))
	}
	colored, _, _ := newModel(t, false, true)
	typeLine(t, colored, "latncy")
	if !colorSGR.MatchString(colored.View().Content) {
		t.Error("color: the view has no colors")
	}
}

// colorSGR finds an escape sequence that sets a foreground or background
// color (30–37, 38;…, 39, 40–47, 48;…, 90–97, 100–107); bold and reverse
// are not colors, and NO_COLOR allows them.
var colorSGR = regexp.MustCompile(`\x1b\[([0-9]*;)*(3[0-9]|4[0-9]|9[0-7]|10[0-7])(;[0-9]+)*m`)

func TestModel_ClockAndPause(t *testing.T) {
	m, _, clk := newModel(t, false, false)
	clk.t = clk.t.Add(65 * time.Second)
	if v := screen(m); !strings.Contains(v, "00:01:05") {
		t.Errorf("header after 65s:\n%s", v)
	}
	m.Update(tea.KeyPressMsg{Code: tea.KeyF4})
	paused := screen(m)
	clk.t = clk.t.Add(10 * time.Second)
	if v := screen(m); v != paused || !strings.Contains(v, "PAUSED") {
		t.Errorf("paused view changed:\n%s", v)
	}
	// Paused, the command line still shows what is typed and answered.
	typeLine(t, m, `mark "while paused"`)
	if v := screen(m); !strings.Contains(v, "marked: while paused") || !strings.Contains(v, "00:01:05") {
		t.Errorf("a command while paused:\n%s", v)
	}
	// A resize while paused draws the view at the new size.
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	checkFits(t, screen(m), 100, 30)
	if v := screen(m); strings.Count(v, "\n") != 29 {
		t.Errorf("paused view after a resize to 100x30 has %d lines", strings.Count(v, "\n")+1)
	}
	m.Update(tea.KeyPressMsg{Code: tea.KeyF4})
	if v := screen(m); !strings.Contains(v, "00:01:15") {
		t.Errorf("resumed view:\n%s", v)
	}
}

func TestModel_HistoryAndCompletion(t *testing.T) {
	m, _, _ := newModel(t, false, false)
	typeLine(t, m, "mark one")
	typeLine(t, m, "mark two")
	m.Update(tea.KeyPressMsg{Code: tea.KeyUp})
	m.Update(tea.KeyPressMsg{Code: tea.KeyUp})
	if got := m.input.Value(); got != "mark one" {
		t.Errorf("two ups: %q", got)
	}
	m.Update(tea.KeyPressMsg{Code: tea.KeyDown})
	if got := m.input.Value(); got != "mark two" {
		t.Errorf("then down: %q", got)
	}
	m.input.SetValue("laten")
	m.Update(tea.KeyPressMsg{Code: tea.KeyTab})
	if got := m.input.Value(); got != "latency " {
		t.Errorf("tab after laten: %q", got)
	}
	m.Update(tea.KeyPressMsg{Code: tea.KeyTab})
	if got := m.input.Value(); got != "latency web " {
		t.Errorf("tab after latency: %q", got)
	}
}

func TestModel_QuitAttachedAsks(t *testing.T) {
	m, admin, _ := newModel(t, true, false)
	typeLine(t, m, "latency web 5ms")
	_, cmd := m.Update(tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl})
	if cmd != nil || !strings.Contains(screen(m), "clear the 1 fault(s) this session added") {
		t.Fatalf("ctrl+c on an attached session with a fault did not ask:\n%s", screen(m))
	}
	_, cmd = m.Update(tea.KeyPressMsg{Code: 'n', Text: "n"})
	if cmd == nil || !m.keep {
		t.Fatal("n: want quit, keeping the faults")
	}
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Error("n did not quit")
	}
	if ps, _ := admin.Proxies(context.Background()); len(ps[0].Faults) != 1 {
		t.Errorf("faults: %+v", ps[0].Faults)
	}
}

// Traffic through the proxy shows in its sparklines once the proxy has
// counted a whole second of it.
func TestModel_TrafficSparkline(t *testing.T) {
	m, _, _ := newModel(t, false, false)
	url := "http://" + m.s.Proxies()[0].Listen + "/"
	for range 20 {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	deadline := time.Now().Add(time.Minute) // only a hang takes this long
	for !strings.Contains(screen(m), "█") {
		if time.Now().After(deadline) {
			t.Fatalf("no traffic in the sparklines:\n%s", screen(m))
		}
		m.Update(m.poll()())
		time.Sleep(50 * time.Millisecond)
	}
}

func TestGuardLine(t *testing.T) {
	limit, p := 12.0, 0.25
	got := guardLine(harness.ProxyInfo{Guard: []harness.PolicyInfo{
		{Name: "orders", Kind: "breaker", State: "open", Rejected: map[string]uint64{"open": 7}},
		{Name: "proxy", Kind: "adaptive_limit", State: "limiting", Limit: &limit},
		{Name: "proxy#2", Kind: "throttle", State: "throttling", Probability: &p},
	}})
	want := "orders open rejected 7 · proxy limiting limit 12 · proxy#2 throttling p(reject) 25%"
	if got != want {
		t.Errorf("guardLine = %q, want %q", got, want)
	}
}

func TestComplete(t *testing.T) {
	c := Candidates{Verbs: []string{"clear", "load", "help"}, Kinds: []string{"latency", "limit_data", "abort", "goroutines"}, Runtime: []string{"goroutines"}, Proxies: []string{"web", "db"}, Faults: []string{"latency-slow"}}
	for in, want := range map[string]string{
		"":             "",
		"lo":           "load ",
		"l":            "l",
		"li":           "limit_data ",
		"abort ":       "abort ",
		"abort w":      "abort web ",
		"goroutines ":  "goroutines target ",
		"clear lat":    "clear latency-slow ",
		"help ab":      "help abort ",
		"load 10/s 1s": "load 10/s 1s",
		"zzz":          "zzz",
	} {
		if got := Complete(in, c); got != want {
			t.Errorf("Complete(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSparkline(t *testing.T) {
	for _, tt := range []struct {
		xs   []float64
		w    int
		want string
	}{
		{[]float64{0, 1, 2, 4, 8}, 5, "▁▁▂▄█"},
		{[]float64{0, 0}, 4, "  ▁▁"},
		{[]float64{1, 2, 3, 4, 5, 6}, 3, "▅▆█"},
		{nil, 2, "  "},
	} {
		if got := Sparkline(tt.xs, tt.w); got != tt.want {
			t.Errorf("Sparkline(%v, %d) = %q, want %q", tt.xs, tt.w, got, tt.want)
		}
	}
}
