package backup

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Progress reports a backup's or restore's progress on w: a bar redrawn in
// place on a terminal (items, bytes, rate, ETA), plain lines every few
// seconds otherwise. A nil *Progress reports nothing.
type Progress struct {
	w     io.Writer
	tty   bool
	every time.Duration
	verb  string

	total, items, bytes atomic.Int64
	phase               atomic.Pointer[string]

	start time.Time
	stop  chan struct{}
	done  sync.WaitGroup
	once  sync.Once
}

// NewProgress starts reporting on w; tty redraws one line in place (a
// terminal), else a line every 5 seconds. verb names the work ("backup").
func NewProgress(w io.Writer, tty bool, verb string) *Progress {
	p := &Progress{w: w, tty: tty, every: 5 * time.Second, verb: verb, start: time.Now(), stop: make(chan struct{})}
	if tty {
		p.every = 200 * time.Millisecond
	}
	empty := ""
	p.phase.Store(&empty)
	p.done.Add(1)
	go p.run()
	return p
}

func (p *Progress) run() {
	defer p.done.Done()
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.print(false)
		}
	}
}

// AddTotal adds n expected items.
func (p *Progress) AddTotal(n int64) {
	if p != nil {
		p.total.Add(n)
	}
}

// Add counts n items of b bytes done.
func (p *Progress) Add(n, b int64) {
	if p != nil {
		p.items.Add(n)
		p.bytes.Add(b)
	}
}

// Phase names what is being worked on ("stream MSGS").
func (p *Progress) Phase(s string) {
	if p != nil {
		p.phase.Store(&s)
	}
}

// Finish prints the last line and stops.
func (p *Progress) Finish() { p.end(true) }

// Stop stops without a last line (the work failed; its error says why).
// After Finish it does nothing.
func (p *Progress) Stop() { p.end(false) }

func (p *Progress) end(finished bool) {
	if p == nil {
		return
	}
	p.once.Do(func() {
		close(p.stop)
		p.done.Wait()
		if finished {
			p.print(true)
		} else if p.tty {
			fmt.Fprint(p.w, "\r\033[K")
		}
	})
}

func (p *Progress) print(last bool) {
	items, total, bytes := p.items.Load(), p.total.Load(), p.bytes.Load()
	el := time.Since(p.start)
	if total < items {
		total = items
	}
	rate := float64(items) / max(el.Seconds(), 0.001)
	eta := "?"
	if rate > 0 && total > 0 {
		eta = time.Duration(float64(total-items) / rate * float64(time.Second)).Round(time.Second).String()
	}
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(items) / float64(total)
	}
	line := fmt.Sprintf("%s %5.1f%% %d/%d items %s %.0f items/s ETA %s %s", p.verb, pct, items, total, humanBytes(bytes), rate, eta, *p.phase.Load())
	if last {
		line = fmt.Sprintf("%s done: %d items %s in %s", p.verb, items, humanBytes(bytes), el.Round(time.Millisecond))
	}
	if !p.tty {
		fmt.Fprintln(p.w, line)
		return
	}
	const width = 24
	fill := int(pct / 100 * width)
	bar := "[" + strings.Repeat("=", fill) + strings.Repeat(" ", width-fill) + "] "
	if last {
		bar = ""
	}
	end := ""
	if last {
		end = "\n"
	}
	fmt.Fprintf(p.w, "\r\033[K%s%s%s", bar, line, end)
}

func humanBytes(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}
