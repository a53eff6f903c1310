package report

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// svgNamespace is the one URL an SVG may name without fetching anything;
// the report does not even need it inline, but a test that forbids it would
// forbid valid SVG.
const svgNamespace = "http://www.w3.org/2000/svg"

func renderHTML(t testing.TB, r *Report) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func parseHTML(t *testing.T, data []byte) *html.Node {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func walk(n *html.Node, f func(*html.Node)) {
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func findAll(root *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	walk(root, func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
	})
	return out
}

func byID(root *html.Node, id string) *html.Node {
	found := findAll(root, func(n *html.Node) bool { return attr(n, "id") == id })
	if len(found) == 0 {
		return nil
	}
	return found[0]
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	walk(n, func(c *html.Node) {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	})
	return b.String()
}

// urlAttrs are the attributes through which a page loads or links to
// something.
var urlAttrs = map[string]bool{"href": true, "src": true, "srcset": true, "action": true, "formaction": true,
	"poster": true, "data": true, "background": true, "cite": true, "longdesc": true, "manifest": true, "ping": true, "xlink:href": true}

// cssURL finds CSS that loads something: url(...) or @import.
var cssURL = regexp.MustCompile(`(?i)url\s*\(|@import`)

// checkSelfContained fails the test for anything in the page that refers to
// a resource outside the file.
func checkSelfContained(t *testing.T, doc *html.Node) {
	t.Helper()
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		switch n.DataAtom {
		case atom.Link, atom.Iframe, atom.Object, atom.Embed, atom.Img, atom.Base, atom.Frame, atom.Audio, atom.Video, atom.Source:
			t.Errorf("<%s> element: the report must not load anything", n.Data)
		case atom.Script:
			if attr(n, "src") != "" {
				t.Errorf("<script src=%q>", attr(n, "src"))
			}
			if s := text(n); strings.Contains(s, "http") || strings.Contains(s, "fetch(") || strings.Contains(s, "XMLHttpRequest") || strings.Contains(s, "import(") {
				t.Errorf("inline script refers to the network")
			}
		case atom.Style:
			if cssURL.MatchString(text(n)) {
				t.Errorf("inline stylesheet loads something: %s", cssURL.FindString(text(n)))
			}
		}
		for _, a := range n.Attr {
			key := a.Key
			if a.Namespace != "" {
				key = a.Namespace + ":" + a.Key
			}
			switch {
			case key == "xmlns" || strings.HasPrefix(key, "xmlns:"):
				if a.Val != svgNamespace {
					t.Errorf("<%s %s=%q>: only the SVG namespace is allowed", n.Data, key, a.Val)
				}
			case urlAttrs[key]:
				if !strings.HasPrefix(a.Val, "#") {
					t.Errorf("<%s %s=%q> refers outside the file", n.Data, key, a.Val)
				}
			case key == "style" && cssURL.MatchString(a.Val):
				t.Errorf("<%s style=%q> loads something", n.Data, a.Val)
			case strings.HasPrefix(key, "on"):
				t.Errorf("<%s %s=...>: inline event handler", n.Data, key)
			}
		}
	})
}

func TestWriteHTML_SelfContained(t *testing.T) {
	tests := []struct {
		name   string
		report *Report
	}{
		{"simple", fixture()},
		{"rich", richFixture()},
		{"one hour", oneHourFixture(20)},
		{"failed run", &Report{Schema: Schema, Scenario: "down", Error: "target unreachable: dial tcp 127.0.0.1:1: connection refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkSelfContained(t, parseHTML(t, renderHTML(t, tt.report)))
		})
	}
}

func TestWriteHTML_Contents(t *testing.T) {
	r := richFixture()
	doc := parseHTML(t, renderHTML(t, r))

	if v := byID(doc, "verdict"); v == nil || text(v) != "FAILED" {
		t.Errorf("verdict badge missing or wrong")
	}
	header := text(findAll(doc, func(n *html.Node) bool { return n.DataAtom == atom.Header })[0])
	for _, want := range []string{r.Scenario, r.Target, "60s", "42", "v0.0.0-test"} {
		if !strings.Contains(header, want) {
			t.Errorf("header lacks %q: %s", want, header)
		}
	}

	t.Run("sla table", func(t *testing.T) {
		rows := findAll(byID(doc, "slas"), func(n *html.Node) bool { return n.DataAtom == atom.Tr && attr(n, "class") != "" })
		if len(rows) != len(r.SLAs) {
			t.Fatalf("SLA table has %d rows, want %d", len(rows), len(r.SLAs))
		}
		for i, s := range r.SLAs {
			row := text(rows[i])
			want := "PASS"
			switch {
			case s.NotEvaluated != "":
				want = "NOT EVALUATED"
			case !s.Passed:
				want = "FAIL"
			}
			for _, w := range []string{s.Name, s.Expect, s.Observed, s.NotEvaluated, want} {
				if !strings.Contains(row, w) {
					t.Errorf("SLA row %d lacks %q: %s", i+1, w, row)
				}
			}
		}
		if !strings.Contains(text(rows[2]), "detected at 21.4s") || !strings.Contains(text(rows[3]), "recovered at 47.5s") {
			t.Error("timing SLAs do not say when detection and recovery happened")
		}
		if !strings.Contains(text(rows[4]), "no samples of target:go_goroutines") {
			t.Error("undecided SLA does not say why")
		}
	})

	t.Run("phase labels", func(t *testing.T) {
		strip := findAll(byID(doc, "timeline"), func(n *html.Node) bool { return n.DataAtom == atom.Svg })[0]
		labels := text(strip)
		for _, p := range r.Phases {
			if !strings.Contains(labels, p.Name) {
				t.Errorf("timeline does not label phase %q", p.Name)
			}
		}
		if bands := findAll(byID(doc, "chart-latency"), func(n *html.Node) bool { return strings.HasPrefix(attr(n, "class"), "band") }); len(bands) != len(r.Phases) {
			t.Errorf("latency chart shades %d phases, want %d", len(bands), len(r.Phases))
		}
	})

	t.Run("faults marked", func(t *testing.T) {
		lines := findAll(byID(doc, "chart-throughput"), func(n *html.Node) bool { return strings.HasPrefix(attr(n, "class"), "fault ") })
		if len(lines) != 2*len(r.Faults) {
			t.Errorf("throughput chart marks %d fault on/off lines, want %d", len(lines), 2*len(r.Faults))
		}
	})

	t.Run("sla markers", func(t *testing.T) {
		marks := findAll(byID(doc, "chart-latency"), func(n *html.Node) bool { return strings.HasPrefix(attr(n, "class"), "sla ") })
		if len(marks) != 2 {
			t.Fatalf("latency chart has %d SLA markers, want 2 (the timing SLAs)", len(marks))
		}
		if attr(marks[0], "class") != "sla pass" || attr(marks[1], "class") != "sla fail" || text(marks[1]) == "" {
			t.Errorf("markers are %q, %q", attr(marks[0], "class"), attr(marks[1], "class"))
		}
	})

	t.Run("series", func(t *testing.T) {
		for id, want := range map[string]int{"chart-throughput": 3, "chart-latency": 6} {
			shapes := findAll(byID(doc, id), func(n *html.Node) bool { return n.Data == "path" && attr(n, "d") != "" })
			if len(shapes) != want {
				t.Errorf("%s draws %d series, want %d", id, len(shapes), want)
			}
		}
		legend := text(byID(doc, "chart-throughput"))
		for _, w := range []string{"served by target", "fallbacks", "errors"} {
			if !strings.Contains(legend, w) {
				t.Errorf("throughput legend lacks %q", w)
			}
		}
		if !strings.Contains(text(byID(doc, "chart-latency")), "service p99") {
			t.Error("latency chart does not draw service time though the report has it")
		}
	})

	t.Run("guard lanes", func(t *testing.T) {
		g := byID(doc, "guards")
		if g == nil {
			t.Fatal("no guard section")
		}
		lanes := text(g.NextSibling.NextSibling)
		for _, w := range []string{`breaker("/api/orders")`, "limiter(/api/orders)", "closed", "open", "half-open", "limit 32"} {
			if !strings.Contains(lanes, w) {
				t.Errorf("guard lanes lack %q", w)
			}
		}
		ticks := findAll(g.NextSibling.NextSibling, func(n *html.Node) bool { return attr(n, "class") == "tick" })
		if len(ticks) != 8 {
			t.Errorf("guard lanes mark %d transitions, want 8", len(ticks))
		}
	})

	t.Run("panels", func(t *testing.T) {
		for i, p := range r.Panels {
			c := byID(doc, "chart-panel"+itoa(i))
			if c == nil || !strings.Contains(text(c), p.Title) {
				t.Fatalf("panel %q missing", p.Title)
			}
		}
		if !strings.Contains(text(byID(doc, "chart-panel1")), `proxy: resctl_proxy_requests_total{code="503"} (rate)`) {
			t.Error("counter panel does not say it draws the rate")
		}
	})

	t.Run("tables", func(t *testing.T) {
		phases := text(byID(doc, "phases"))
		for _, w := range []string{"baseline", "total", "890", "97.10%", "200×1960 503×40",
			"Error reasons", "json orders missing"} {
			if !strings.Contains(phases, w) {
				t.Errorf("phase table lacks %q", w)
			}
		}
		faults := text(byID(doc, "faults"))
		for _, w := range []string{"fault/abort", "58", "1110", "5%", "5.2%", `"status":503`} {
			if !strings.Contains(faults, w) {
				t.Errorf("fault table lacks %q", w)
			}
		}
		if !strings.Contains(text(byID(doc, "scrape-errors")), "context deadline exceeded") {
			t.Error("scrape errors not listed")
		}
	})
}

func TestWriteHTML_DefaultPanels(t *testing.T) {
	r := richFixture()
	r.Panels = nil
	doc := parseHTML(t, renderHTML(t, r))
	for i, want := range []string{"Target goroutines", "Target heap"} {
		if c := byID(doc, "chart-panel"+itoa(i)); c == nil || !strings.Contains(text(c), want) {
			t.Errorf("default panel %q missing", want)
		}
	}
	if !strings.Contains(text(byID(doc, "chart-panel1")), "MiB") {
		t.Error("heap panel is not labelled in bytes")
	}

	r.Metrics = nil
	if doc := parseHTML(t, renderHTML(t, r)); byID(doc, "metrics") != nil {
		t.Error("a report without scraped metrics shows a metrics section")
	}
}

func TestWriteHTML_Escapes(t *testing.T) {
	r := fixture()
	r.Scenario = `<script>alert(1)</script>`
	r.SLAs[0].Name = `<img src=x onerror=alert(1)>`
	r.Events = append(r.Events, Event{AtS: 3, Source: "guard", Kind: "transition", Name: `"><script>`, From: "closed", To: "</title><script>"})
	out := renderHTML(t, r)
	doc := parseHTML(t, out)
	if scripts := findAll(doc, func(n *html.Node) bool { return n.DataAtom == atom.Script }); len(scripts) != 2 {
		t.Errorf("page has %d script elements, want the 2 of the template", len(scripts))
	}
	if imgs := findAll(doc, func(n *html.Node) bool { return n.DataAtom == atom.Img }); len(imgs) != 0 {
		t.Error("an SLA name became an element")
	}
	if !bytes.Contains(out, []byte("&lt;script&gt;alert(1)&lt;/script&gt;")) {
		t.Error("scenario name not escaped")
	}
}

func TestWriteHTML_NoServiceTimeWhenAbsent(t *testing.T) {
	doc := parseHTML(t, renderHTML(t, fixture()))
	lat := text(byID(doc, "chart-latency"))
	if strings.Contains(lat, "service") {
		t.Error("latency chart draws service time the report does not have")
	}
	if strings.Contains(text(byID(doc, "chart-throughput")), "fallbacks") {
		t.Error("throughput chart draws fallbacks the report does not have")
	}
}

// TestWriteHTML_OneHourSize holds the HTML report of a one-hour run with 20
// scraped series under its 2 MB budget; downsampling makes the size depend
// on the chart's width, not the run's length.
func TestWriteHTML_OneHourSize(t *testing.T) {
	const budget = 2 << 20
	if out := renderHTML(t, oneHourFailingFixture()); len(out) > budget {
		t.Errorf("one-hour HTML report of a failing run is %d bytes, over the %d budget", len(out), budget)
	}
	out := renderHTML(t, oneHourFixture(20))
	t.Logf("one-hour HTML report: %d bytes", len(out))
	if len(out) > budget {
		t.Errorf("one-hour HTML report is %d bytes, over the %d budget", len(out), budget)
	}
	// The ten-minute spikes of one second must survive downsampling.
	doc := parseHTML(t, out)
	if !strings.Contains(text(byID(doc, "chart-latency")), "900ms") && !strings.Contains(string(out), `"900ms"`) {
		t.Error("one-second latency spikes were lost by downsampling")
	}
}

// TestWriteHTML_Golden pins the HTML of failing runs: a failed check with
// breaches, a timing SLA past its deadline, SLAs on scraped metrics and a
// guard's state.
func TestWriteHTML_Golden(t *testing.T) {
	for name, r := range map[string]*Report{
		"failing.golden.html": failingRunFixture(),
		"timing.golden.html":  timingFixture(),
		"scraped.golden.html": scrapedFixture(),
	} {
		t.Run(name, func(t *testing.T) { golden(t, name, renderHTML(t, r)) })
	}
}

func TestWriteHTML_Failures(t *testing.T) {
	tests := []struct {
		name   string
		report *Report
		banner []string
		charts map[string]int // chart → limit lines drawn on it
		shaded map[string]int // chart → shaded breaches
	}{
		{
			name: "failed checks", report: failingRunFixture(),
			banner: []string{"fast before the fault", "p99 during baseline was 127ms, limit < 100ms; broken in seconds 0–1",
				"success_rate during fault was 60%, limit >= 99%; broken in seconds 10–19"},
			charts: map[string]int{"chart-latency": 2, "chart-shares": 2}, shaded: map[string]int{"chart-latency": 1, "chart-shares": 1},
		},
		{
			name: "timing", report: timingFixture(),
			banner: []string{"time_to: never detected, counting from 10s; deadline 12s (< 2s after 10s)",
				"recovery_time was 4s: recovered at 24s, deadline 22s (< 2s after 20s)"},
			charts: map[string]int{"chart-shares": 2},
		},
		{
			name: "scraped", report: scrapedFixture(),
			banner: []string{"last(target:go_goroutines) during fault was 41, limit <= 30; broken in seconds 15–19",
				"time_to was 3.5s: detected at 13.5s, deadline 12s"},
			charts: map[string]int{"chart-panel0": 1, "chart-panel1": 1}, shaded: map[string]int{"chart-panel1": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := parseHTML(t, renderHTML(t, tt.report))
			banner := byID(doc, "failures")
			if banner == nil {
				t.Fatal("no failure banner")
			}
			for _, w := range tt.banner {
				if !strings.Contains(text(banner), w) {
					t.Errorf("banner lacks %q:\n%s", w, text(banner))
				}
			}
			for id, n := range tt.charts {
				if got := len(findAll(byID(doc, id), func(n *html.Node) bool { return strings.HasPrefix(attr(n, "class"), "limit ") })); got != n {
					t.Errorf("%s draws %d limit lines, want %d", id, got, n)
				}
			}
			for id, n := range tt.shaded {
				if got := len(findAll(byID(doc, id), func(n *html.Node) bool { return attr(n, "class") == "breach" })); got != n {
					t.Errorf("%s shades %d breaches, want %d", id, got, n)
				}
			}
			deadlines := findAll(byID(doc, "chart-throughput"), func(n *html.Node) bool { return strings.HasPrefix(attr(n, "class"), "deadline ") && n.Data == "line" })
			timed := 0
			for _, s := range tt.report.SLAs {
				if s.Kind == "time_to" || s.Kind == "recovery_time" {
					timed++
				}
			}
			if len(deadlines) != timed {
				t.Errorf("%d deadlines drawn, want %d", len(deadlines), timed)
			}
		})
	}
}

// A guard state an SLA reads gets a lane even when it never changed (the
// breaker that never opened is what a failed time_to has to show); one no
// SLA reads and that never changed does not.
func TestWriteHTML_UnchangedGuardLane(t *testing.T) {
	r := timingFixture()
	r.Guards = []GuardState{{Kind: "breaker", Name: "payments", Initial: "closed"}, {Kind: "breaker", Name: "unread", Initial: "closed"}}
	r.SLAs = append(r.SLAs, SLA{Name: "breaker opens", Expect: `time_to(breaker("payments") == open) < 2s`, Kind: "time_to",
		Observed: "time_to=never", Values: map[string]float64{},
		Checks: []SLACheck{
			{Subject: `breaker("payments")`, Op: "==", LimitState: "open", StateKind: "breaker", StateName: "payments", Within: "time_to"},
			{Subject: "time_to", Op: "<", Unit: "duration", Limit: ptr(2), SinceS: ptr(10)},
		}})
	doc := parseHTML(t, renderHTML(t, r))
	g := byID(doc, "guards")
	if g == nil {
		t.Fatal("no guard section for a breaker an SLA reads")
	}
	lanes := g.NextSibling.NextSibling
	segs := findAll(lanes, func(n *html.Node) bool { return n.Data == "title" })
	var titles []string
	for _, s := range segs {
		titles = append(titles, text(s))
	}
	if !slices.Contains(titles, "breaker payments: closed the whole run (it never changed)") {
		t.Errorf("no whole-run lane for the breaker; titles %q", titles)
	}
	if strings.Contains(text(lanes), "unread") {
		t.Error("a lane for a breaker no SLA reads and that never changed")
	}
	if b := text(byID(doc, "failures")); !strings.Contains(b, "breaker payments stayed closed the whole run") {
		t.Errorf("the banner does not say the breaker never changed:\n%s", b)
	}

	r.SLAs = r.SLAs[:len(r.SLAs)-1]
	if byID(parseHTML(t, renderHTML(t, r)), "guards") != nil {
		t.Error("a guard section though no SLA reads a guard and none changed")
	}
}

// SLAs with the same deadline share one line, so their labels do not
// print over each other.
func TestWriteHTML_SharedDeadline(t *testing.T) {
	r := timingFixture()
	second := r.SLAs[0]
	second.Name = "also within 2 s"
	r.SLAs = append(r.SLAs, second)
	doc := parseHTML(t, renderHTML(t, r))
	lines := findAll(byID(doc, "chart-throughput"), func(n *html.Node) bool { return strings.HasPrefix(attr(n, "class"), "deadline ") && n.Data == "line" })
	if len(lines) != 2 {
		t.Errorf("%d deadline lines, want 2: SLAs 1 and 3 share theirs", len(lines))
	}
	if txt := text(byID(doc, "chart-throughput")); !strings.Contains(txt, "deadline 1, 3") {
		t.Errorf("no shared label %q in %q", "deadline 1, 3", txt)
	}
}
