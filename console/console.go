package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/inject/agent"
	"github.com/resctl/resctl/session"
)

// ErrKeepFaults is returned by Run when the person quit an attached
// session and chose to leave the faults it added on until their TTLs.
var ErrKeepFaults = errors.New("keep the session's faults")

// Options configure the console.
type Options struct {
	Input    io.Reader
	Output   io.Writer
	AdminURL string
	// Attached says the proxies are not the session's own: quitting asks
	// whether to clear the faults it added.
	Attached bool
	// Every is how often the view polls the proxies and redraws; 0 is a
	// second.
	Every time.Duration
	// Color styles the view; Run sets it from NO_COLOR.
	Color bool
	// Now is the console's clock; nil is time.Now.
	Now func() time.Time
}

// SparkSpan is how far back the sparklines reach: a cell is the mean rate
// and error share of its seconds, and their worst p50 and p99.
const SparkSpan = 2 * time.Minute

// MinWidth and MinHeight are the smallest terminal the console draws in;
// below it says so and keeps taking commands.
const (
	MinWidth  = 60
	MinHeight = 16
)

// Run shows the console on a terminal until the person quits, ctx ends
// (SIGTERM, SIGHUP) or the terminal goes away. The caller closes the
// session; ErrKeepFaults asks it to leave the session's faults on.
func Run(ctx context.Context, s *session.Session, opts Options) error {
	_, noColor := os.LookupEnv("NO_COLOR")
	opts.Color = !noColor
	m := New(ctx, s, opts)
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithInput(opts.Input), tea.WithOutput(opts.Output), tea.WithFPS(10))
	final, err := p.Run()
	if errors.Is(err, tea.ErrProgramKilled) || errors.Is(err, context.Canceled) {
		return nil // ctx ended: the caller clears up
	}
	if err != nil {
		return err
	}
	if fm, ok := final.(*Model); ok && fm.keep {
		return ErrKeepFaults
	}
	return nil
}

// Model is the console's state: the session it drives, the command line
// and what the view shows. It is a bubbletea model; tests drive it with
// messages.
type Model struct {
	ctx   context.Context
	s     *session.Session
	opts  Options
	now   func() time.Time
	input textinput.Model

	width, height int
	paused        bool
	selected      int // index into the active faults
	message       string
	messageErr    bool
	// answer is the last command's answer when it has several lines
	// (help, faults): shown where the event log is until Esc or the next
	// command.
	answer      []string
	answerTo    string
	history     []string
	histAt      int
	confirmQuit bool
	keep        bool
	quitting    bool
	busy        bool
	// frozen is the view above the command line kept while paused; the
	// command line and its answer stay live.
	frozen string
}

// Messages the model handles besides bubbletea's own.
type (
	// TickMsg asks for a poll; one comes every Options.Every.
	TickMsg time.Time
	// PolledMsg carries the lines a poll added to the log.
	PolledMsg struct{ Lines []session.Line }
	// ResultMsg is a command's outcome.
	ResultMsg struct {
		Line string
		Out  string
		Err  error
	}
)

// New returns the console's model for a session.
func New(ctx context.Context, s *session.Session, opts Options) *Model {
	if opts.Every <= 0 {
		opts.Every = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	in := textinput.New()
	in.Prompt = "> "
	in.Placeholder = "a command: help, latency " + s.Front() + " 200ms 30%, load 50/s 30s, save s.yaml"
	in.CharLimit = session.MaxLine
	st := textinput.DefaultDarkStyles()
	st.Cursor.Blink = false // a blinking cursor would redraw an idle console twice a second
	if !opts.Color {
		plain := lipgloss.NewStyle()
		st.Focused = textinput.StyleState{Text: plain, Placeholder: plain, Suggestion: plain, Prompt: plain}
		st.Blurred = st.Focused
		st.Cursor.Color = lipgloss.NoColor{}
	}
	in.SetStyles(st)
	in.Focus()
	return &Model{ctx: ctx, s: s, opts: opts, now: opts.Now, input: in, width: 80, height: 24}
}

// Init starts the poll ticks.
func (m *Model) Init() tea.Cmd {
	return tea.Batch(m.poll(), m.tick())
}

func (m *Model) tick() tea.Cmd {
	return tea.Tick(m.opts.Every, func(t time.Time) tea.Msg { return TickMsg(t) })
}

func (m *Model) poll() tea.Cmd {
	return func() tea.Msg { return PolledMsg{Lines: m.s.Poll(m.ctx)} }
}

func (m *Model) exec(line string) tea.Cmd {
	return func() tea.Msg {
		out, err := m.s.ExecLine(m.ctx, line)
		return ResultMsg{Line: line, Out: out, Err: err}
	}
}

// Update handles one message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.input.SetWidth(max(m.width-4, 10))
		m.frozen = "" // paused, the view is drawn again at the new size
		return m, nil
	case TickMsg:
		return m, tea.Batch(m.poll(), m.tick())
	case PolledMsg:
		return m, nil
	case ResultMsg:
		m.busy = false
		switch {
		case errors.Is(msg.Err, session.ErrQuit):
			return m, m.quit()
		case msg.Err != nil:
			m.message, m.messageErr = msg.Err.Error(), true
		default:
			m.message, m.messageErr = firstLine(msg.Out), false
			if lines := strings.Split(strings.TrimSpace(msg.Out), "\n"); len(lines) > 1 {
				m.answer, m.answerTo = lines, msg.Line
			}
		}
		return m, m.poll()
	case tea.KeyPressMsg:
		return m.key(msg)
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(msg)
	return m, cmd
}

func firstLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 1 {
		return lines[0] + fmt.Sprintf(" (%d lines above; Esc closes them)", len(lines))
	}
	return lines[0]
}

// quit ends the console, or on an attached proxy with faults of the
// session's own still on, asks first.
func (m *Model) quit() tea.Cmd {
	if m.opts.Attached && !m.confirmQuit && m.mineActive() > 0 {
		m.confirmQuit = true
		m.message, m.messageErr = fmt.Sprintf("clear the %d fault(s) this session added before leaving? [Y/n]", m.mineActive()), false
		return nil
	}
	m.quitting = true
	return tea.Quit
}

func (m *Model) mineActive() int {
	n := 0
	for _, f := range m.s.Faults() {
		if f.Mine && f.Active() {
			n++
		}
	}
	return n
}

// listed are the faults the view lists: the active ones, then the last
// few the session added and that are off now, which F2 switches back on.
func (m *Model) listed() []session.FaultSpan {
	all := m.s.Faults()
	out := m.activeFaults()
	seen := map[[2]string]bool{}
	for _, f := range out {
		seen[[2]string{f.Proxy, f.ID}] = true
	}
	var off []session.FaultSpan
	for i := len(all) - 1; i >= 0 && len(off) < 3; i-- {
		f := all[i]
		if k := [2]string{f.Proxy, f.ID}; f.Mine && !f.Active() && !seen[k] {
			seen[k] = true
			off = append(off, f)
		}
	}
	return append(out, off...)
}

func (m *Model) activeFaults() []session.FaultSpan {
	var out []session.FaultSpan
	for _, f := range m.s.Faults() {
		if f.Active() {
			out = append(out, f)
		}
	}
	return out
}

func (m *Model) key(k tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	key := k.String()
	if m.confirmQuit {
		switch strings.ToLower(key) {
		case "n":
			m.keep, m.quitting = true, true
			return m, tea.Quit
		case "y", "enter", "ctrl+c":
			m.quitting = true
			return m, tea.Quit
		case "esc":
			m.confirmQuit = false
			m.message = ""
			return m, nil
		}
		return m, nil
	}
	switch key {
	case "ctrl+c", "ctrl+d":
		return m, m.quit()
	case "enter":
		line := strings.TrimSpace(m.input.Value())
		m.input.SetValue("")
		if line == "" {
			return m, nil
		}
		if len(m.history) == 0 || m.history[len(m.history)-1] != line {
			m.history = append(m.history, line)
		}
		m.histAt = len(m.history)
		m.answer = nil
		m.busy = true
		m.message, m.messageErr = "… "+line, false
		return m, m.exec(line)
	case "tab":
		m.input.SetValue(Complete(m.input.Value(), m.candidates()))
		m.input.CursorEnd()
		return m, nil
	case "up":
		if m.histAt > 0 {
			m.histAt--
			m.input.SetValue(m.history[m.histAt])
			m.input.CursorEnd()
		}
		return m, nil
	case "down":
		if m.histAt < len(m.history) {
			m.histAt++
			v := ""
			if m.histAt < len(m.history) {
				v = m.history[m.histAt]
			}
			m.input.SetValue(v)
			m.input.CursorEnd()
		}
		return m, nil
	case "pgup":
		m.selected = max(m.selected-1, 0)
		return m, nil
	case "pgdown":
		m.selected = min(m.selected+1, max(len(m.listed())-1, 0))
		return m, nil
	case "f2":
		fs := m.listed()
		if len(fs) == 0 {
			m.message, m.messageErr = "no fault to switch", true
			return m, nil
		}
		f := fs[min(m.selected, len(fs)-1)]
		m.busy = true
		if f.Active() {
			return m, m.exec("clear " + f.ID)
		}
		return m, func() tea.Msg {
			out, err := m.s.Readd(m.ctx, f.Proxy, f.ID)
			return ResultMsg{Line: "F2", Out: out, Err: err}
		}
	case "f3":
		m.busy = true
		return m, m.exec("clear all")
	case "f4":
		m.paused = !m.paused
		m.frozen = ""
		return m, nil
	case "esc":
		m.input.SetValue("")
		m.answer = nil
		return m, nil
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(k)
	return m, cmd
}

// candidates are the words Tab completes: commands and kinds first, then
// proxy names and fault ids.
func (m *Model) candidates() Candidates {
	c := Candidates{Kinds: session.Kinds(), Runtime: agent.Kinds()}
	for _, v := range session.Verbs {
		c.Verbs = append(c.Verbs, v.Name)
	}
	for _, p := range m.s.Proxies() {
		c.Proxies = append(c.Proxies, p.Name)
	}
	for _, f := range m.activeFaults() {
		c.Faults = append(c.Faults, f.ID)
	}
	return c
}

// Candidates are the words completion knows: runtime kinds complete to
// "target" where other kinds complete to a proxy.
type Candidates struct {
	Verbs, Kinds, Runtime, Proxies, Faults []string
}

// Complete completes the last word of line: a command or kind first, a
// proxy after a kind, a fault id or proxy after clear. With several
// matches it completes their common prefix.
func Complete(line string, c Candidates) string {
	words := strings.Fields(line)
	trailing := strings.HasSuffix(line, " ") || line == ""
	pos := len(words) - 1
	if trailing {
		pos++
	}
	var pool []string
	switch {
	case pos == 0:
		pool = append(slices.Clone(c.Verbs), c.Kinds...)
	case pos == 1 && words[0] == "clear":
		pool = append(append(slices.Clone(c.Faults), c.Proxies...), "all")
	case pos == 1 && words[0] == "help":
		pool = append(slices.Clone(c.Verbs), c.Kinds...)
	case pos == 1 && slices.Contains(c.Runtime, words[0]):
		pool = []string{"target"}
	case pos == 1 && slices.Contains(c.Kinds, words[0]):
		pool = c.Proxies
	default:
		return line
	}
	prefix := ""
	if !trailing {
		prefix = words[pos]
	}
	var match []string
	for _, w := range pool {
		if strings.HasPrefix(w, prefix) {
			match = append(match, w)
		}
	}
	if len(match) == 0 {
		return line
	}
	slices.Sort(match)
	match = slices.Compact(match)
	common := match[0]
	for _, w := range match[1:] {
		for !strings.HasPrefix(w, common) {
			common = common[:len(common)-1]
		}
	}
	head := strings.Join(words[:pos], " ")
	if head != "" {
		head += " "
	}
	if len(match) == 1 {
		return head + common + " "
	}
	return head + common
}

// View draws the console.
func (m *Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = "resctl chaos"
	return v
}

type styles struct {
	head, dim, bad, good, sel, title lipgloss.Style
}

func (m *Model) styles() styles {
	if !m.opts.Color {
		p := lipgloss.NewStyle()
		return styles{p, p, p, p, p.Reverse(true), p.Bold(true)}
	}
	return styles{
		head:  lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("6")),
		dim:   lipgloss.NewStyle().Foreground(lipgloss.Color("8")),
		bad:   lipgloss.NewStyle().Foreground(lipgloss.Color("1")).Bold(true),
		good:  lipgloss.NewStyle().Foreground(lipgloss.Color("2")),
		sel:   lipgloss.NewStyle().Reverse(true),
		title: lipgloss.NewStyle().Bold(true),
	}
}

// render draws the whole screen as text: header, a panel per proxy
// (sparklines of the last seconds, guard states), the active faults, the
// event log filling what is left, the command line and its answer.
func (m *Model) render() string {
	st := m.styles()
	w, h := m.width, m.height
	if w < MinWidth || h < MinHeight {
		note := fmt.Sprintf("terminal %d×%d is too small: the console needs %d×%d. Commands still work; quit leaves.", w, h, MinWidth, MinHeight)
		return ansi.Wrap(note, max(w, 1), "") + "\n" + m.input.View() + "\n" + m.messageLine(st)
	}
	if m.paused && m.frozen != "" {
		return m.frozen + "\n" + m.input.View() + "\n" + m.messageLine(st)
	}
	var top []string
	elapsed := m.now().Sub(m.s.Start()).Truncate(time.Second)
	head := fmt.Sprintf("resctl chaos · %s · %s", m.opts.AdminURL, session.Clock(elapsed))
	if l := m.s.LoadRunning(); l != "" {
		head += " · load " + l
	}
	if m.paused {
		head += " · PAUSED (F4)"
	}
	top = append(top, st.head.Render(fit(head, w)))

	spark := max((w-44)/2, 8)
	for _, p := range m.s.Proxies() {
		top = append(top, st.title.Render(rule(fmt.Sprintf("─ %s (%s %s → %s) ", p.Name, p.Protocol, p.Listen, p.Upstream), w)))
		if p.Protocol != harness.ProtocolTCP {
			// Each cell is a few seconds, so the lines span the last
			// SparkSpan whatever the width.
			per := max((int(SparkSpan/time.Second)+spark-1)/spark, 1)
			pts := m.s.Traffic(p.Name, spark*per)
			var rps, errs, p50, p99 []float64
			for i := 0; i+per <= len(pts); i += per {
				var req, bad uint64
				var l50, l99 float64
				for _, pt := range pts[i : i+per] {
					req += pt.Requests
					bad += pt.Errors
					l50, l99 = max(l50, pt.P50), max(l99, pt.P99)
				}
				rps = append(rps, float64(req)/float64(per))
				e := 0.0
				if req > 0 {
					e = 100 * float64(bad) / float64(req)
				}
				errs = append(errs, e)
				p50 = append(p50, l50)
				p99 = append(p99, l99)
			}
			lastOf := func(xs []float64) float64 {
				if len(xs) == 0 {
					return 0
				}
				return xs[len(xs)-1]
			}
			errText := fmt.Sprintf("%5.1f%%", lastOf(errs))
			if lastOf(errs) > 0 {
				errText = st.bad.Render(errText)
			}
			top = append(top,
				fmt.Sprintf(" req/s %s %6.0f   err  %s %s", Sparkline(rps, spark), lastOf(rps), Sparkline(errs, spark), errText),
				fmt.Sprintf(" p50   %s %6s   p99  %s %s", Sparkline(p50, spark), ms(lastOf(p50)), Sparkline(p99, spark), ms(lastOf(p99))))
		}
		if g := guardLine(p); g != "" {
			top = append(top, fit(" guard: "+g, w))
		}
	}
	faults := m.listed()
	top = append(top, st.title.Render(rule(fmt.Sprintf("─ faults (%d) · PgUp/PgDn select · F2 switch off/on · F3 clear all ", len(m.activeFaults())), w)))
	if len(faults) == 0 {
		top = append(top, st.dim.Render(" none: e.g. latency "+m.s.Front()+" 200ms 30%"))
	}
	sel := min(m.selected, max(len(faults)-1, 0))
	for i, f := range faults {
		left := ""
		if !f.ExpiresAt.IsZero() {
			left = max(f.ExpiresAt.Sub(m.now()), 0).Round(time.Second).String() + " left"
		}
		line := fit(fmt.Sprintf(" %s on %s  %s  matched %d injected %d  %s", f.ID, f.Proxy, session.Describe(f.Kind, f.Params), f.Matched, f.Injected, left), w)
		if !f.Active() {
			line = fit(fmt.Sprintf(" %s on %s  %s  off", f.ID, f.Proxy, session.Describe(f.Kind, f.Params)), w)
		}
		switch {
		case i == sel:
			line = st.sel.Render(line)
		case !f.Active():
			line = st.dim.Render(line)
		}
		top = append(top, line)
	}
	if len(m.answer) > 0 {
		top = append(top, st.title.Render(rule("─ "+m.answerTo+" · Esc closes ", w)))
	} else {
		top = append(top, st.title.Render(rule("─ events ", w)))
	}
	bottom := []string{m.input.View(), m.messageLine(st)}
	room := h - len(top) - len(bottom)
	var log []string
	if room > 0 {
		if len(m.answer) > 0 {
			// An answer from its first line; what does not fit says so.
			shown := m.answer
			if len(shown) > room {
				shown = append(slices.Clone(shown[:room-1]), fmt.Sprintf("… %d more lines: a taller terminal shows them", len(m.answer)-room+1))
			}
			for _, l := range shown {
				log = append(log, fit(l, w))
			}
		} else {
			lines := m.s.Lines()
			for _, l := range lines[max(len(lines)-room, 0):] {
				log = append(log, fit(l.String(), w))
			}
		}
		for len(log) < room {
			log = append(log, "")
		}
	} else {
		top = top[:max(len(top)+room, 1)]
	}
	view := strings.Join(append(top, log...), "\n")
	if m.paused {
		m.frozen = view
	}
	return view + "\n" + strings.Join(bottom, "\n")
}

func (m *Model) messageLine(st styles) string {
	switch {
	case m.message == "":
		return st.dim.Render(fit("Tab completes · ↑↓ history · F4 pauses the view · help · quit", m.width))
	case m.messageErr:
		return st.bad.Render(fit(m.message, m.width))
	}
	return fit(m.message, m.width)
}

func guardLine(p harness.ProxyInfo) string {
	var parts []string
	for _, g := range p.Guard {
		s := g.Name + " " + g.State
		if g.Limit != nil {
			s += fmt.Sprintf(" limit %.0f", *g.Limit)
		}
		if g.InFlight != nil {
			s += fmt.Sprintf(" in flight %d", *g.InFlight)
		}
		if g.Probability != nil {
			s += fmt.Sprintf(" p(reject) %.0f%%", *g.Probability*100)
		}
		if g.BudgetExhausted > 0 {
			s += fmt.Sprintf(" budget exhausted ×%d", g.BudgetExhausted)
		}
		if n := sumRejected(g.Rejected); n > 0 {
			s += fmt.Sprintf(" rejected %d", n)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " · ")
}

func sumRejected(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

func ms(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.1fs", v/1000)
	case v >= 10:
		return fmt.Sprintf("%.0fms", v)
	}
	return fmt.Sprintf("%.1fms", v)
}

// rule is a section's title drawn across the width, cut to w cells only
// when the title itself is longer.
func rule(title string, w int) string {
	return fit(title+strings.Repeat("─", max(w-len([]rune(title)), 0)), w)
}

// fit cuts s to w cells.
func fit(s string, w int) string {
	r := []rune(s)
	if len(r) <= w {
		return s
	}
	if w <= 1 {
		return string(r[:max(w, 0)])
	}
	return string(r[:w-1]) + "…"
}

var bars = []rune("▁▂▃▄▅▆▇█")

// Sparkline draws xs as bars scaled to their largest value; an empty or
// all-zero series is a flat line.
func Sparkline(xs []float64, width int) string {
	if len(xs) > width {
		xs = xs[len(xs)-width:]
	}
	top := 0.0
	for _, x := range xs {
		top = max(top, x)
	}
	var b strings.Builder
	for range width - len(xs) {
		b.WriteRune(' ')
	}
	for _, x := range xs {
		i := 0
		if top > 0 {
			i = int(x / top * float64(len(bars)-1))
		}
		b.WriteRune(bars[min(max(i, 0), len(bars)-1)])
	}
	return b.String()
}
