package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/workers/events"
	"github.com/natter-im/natter/workers/runner"
)

// Headers the handler adds to an event it gives up on. The runner's
// dead-letter copy (subject [DeadLetterSubject], body = the event exactly as
// stored) carries them next to its own Natter-DLQ-* headers
// (runner.HeaderDLQReason, runner.HeaderDLQDeliveries, ...).
const (
	// HeaderDLQEndpoint names the endpoint.
	HeaderDLQEndpoint = "Natter-DLQ-Webhook-Endpoint"
	// HeaderDLQAttempts is how many HTTP attempts were started.
	HeaderDLQAttempts = "Natter-DLQ-Webhook-Attempts"
	// HeaderDLQStatus is the HTTP status of the last answer; absent if the
	// last attempt got none.
	HeaderDLQStatus = "Natter-DLQ-Webhook-Status"
	// HeaderDLQError is the last failure: a transport error, or the status
	// line and the start of the response body.
	HeaderDLQError = "Natter-DLQ-Webhook-Error"
)

const (
	// snippetLen is how much of a failed answer's body goes into errors.
	snippetLen = 256
	// drainLen is how much of an answer's body is read so the connection
	// can be reused.
	drainLen = 64 << 10
	// userAgent of every delivery.
	userAgent = "natter-webhooks/1"
)

// event is the part of the envelope the deliverer reads; the body is sent
// as stored.
type event struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	TS   int64  `json:"ts"`
}

// deliverer is the runner.Handler of one endpoint.
type deliverer struct {
	ep     Endpoint // with defaults
	client *http.Client
	m      *metrics
	log    *slog.Logger
	// fromLog: the runner reads MSGS; each entry is a message event,
	// delivered as the envelope [events.MessageMsg] writes.
	fromLog bool
	kinds   map[string]bool // selected; nil: every kind
}

// kindSet is the set of kinds, nil for none (every kind).
func kindSet(kinds []string) map[string]bool {
	if len(kinds) == 0 {
		return nil
	}
	s := make(map[string]bool, len(kinds))
	for _, k := range kinds {
		s[k] = true
	}
	return s
}

var _ runner.Handler = (*deliverer)(nil)

// Handle delivers each event; the runner runs it with batches of one.
func (d *deliverer) Handle(ctx context.Context, msgs []jetstream.Msg) []runner.Result {
	res := make([]runner.Result, len(msgs))
	for i, m := range msgs {
		res[i] = d.deliver(ctx, m)
	}
	return res
}

// attempt is the outcome of one HTTP attempt.
type attempt struct {
	status     int           // 0: no answer
	err        error         // nil: 2xx
	permanent  bool          // a 4xx other than 408, 425, 429
	retryAfter time.Duration // from a 429 or 503
}

func (d *deliverer) deliver(ctx context.Context, m jetstream.Msg) runner.Result {
	n := 1
	if md, err := m.Metadata(); err == nil {
		n = int(md.NumDelivered)
	}
	ev, body, err := d.decode(m)
	if err != nil {
		return d.giveUp(m, 0, attempt{err: err}, "malformed event")
	}
	switch {
	case d.fromLog && d.kinds != nil && !d.kinds[ev.Kind]:
		return runner.Result{Outcome: runner.Ack} // a message kind not selected
	case !d.fromLog && isMessageKind(ev.Kind):
		// A v1 message event in EVENTS (the events role): the endpoint gets
		// message events from the log.
		return runner.Result{Outcome: runner.Ack}
	}
	if n > d.ep.MaxAttempts {
		// The last attempt did not settle (its worker died, or the
		// dead-letter publish failed): do not try a further time.
		return d.giveUp(m, d.ep.MaxAttempts, attempt{err: errors.New("the last attempt did not finish")}, "no attempts left")
	}
	a := d.post(ctx, ev, body, n)
	switch {
	case a.err == nil:
		d.m.result(ResultSuccess)
		d.m.delivered(ev.TS)
		return runner.Result{Outcome: runner.Ack}
	case a.permanent:
		return d.giveUp(m, n, a, "permanent failure")
	case n >= d.ep.MaxAttempts:
		return d.giveUp(m, n, a, fmt.Sprintf("%d attempts failed", n))
	}
	d.m.result(ResultRetry)
	delay := backoff(d.ep.Backoff, n, a.retryAfter)
	d.log.Debug("webhook attempt failed; retrying", "event", ev.ID, "attempt", n, "delay", delay, "err", a.err)
	return runner.Result{Outcome: runner.Retry, Delay: delay, Reason: fmt.Sprintf("webhook %s: attempt %d: %v", d.ep.Name, n, a.err)}
}

// giveUp dead-letters m through the runner's Poison path, after adding the
// HeaderDLQ* headers to it (the runner copies m's headers to the record).
func (d *deliverer) giveUp(m jetstream.Msg, attempts int, a attempt, why string) runner.Result {
	d.m.result(ResultDeadLetter)
	if h := m.Headers(); h != nil {
		h.Set(HeaderDLQEndpoint, d.ep.Name)
		h.Set(HeaderDLQAttempts, strconv.Itoa(attempts))
		if a.status != 0 {
			h.Set(HeaderDLQStatus, strconv.Itoa(a.status))
		}
		if a.err != nil {
			h.Set(HeaderDLQError, oneLine(a.err.Error()))
		}
	}
	reason := fmt.Sprintf("webhook %s: %s: %v", d.ep.Name, why, a.err)
	d.log.Warn("webhook event dead-lettered", "subject", m.Subject(), "attempts", attempts, "status", a.status, "reason", reason)
	return runner.Result{Outcome: runner.Poison, Reason: reason}
}

// decode reads the event of m and the body to post: an event as stored,
// or the envelope of a log entry.
func (d *deliverer) decode(m jetstream.Msg) (event, []byte, error) {
	if !d.fromLog {
		ev, err := decodeEvent(m)
		return ev, m.Data(), err
	}
	entry, err := msglog.Decode(m.Data(), m.Headers())
	if err != nil {
		return event{}, nil, fmt.Errorf("log entry on %s: %w", m.Subject(), err)
	}
	pm, err := events.MessageMsg(&entry)
	if err != nil {
		return event{}, nil, err
	}
	return event{ID: pm.Header.Get(nats.MsgIdHdr), Kind: events.KindOf(entry), TS: entry.TS}, pm.Data, nil
}

// decodeEvent reads the event id, kind and timestamp. The id falls back to
// Nats-Msg-Id and the kind to the subject's kind token.
func decodeEvent(m jetstream.Msg) (event, error) {
	var ev event
	if err := json.Unmarshal(m.Data(), &ev); err != nil {
		return ev, fmt.Errorf("event on %s is not a JSON envelope: %w", m.Subject(), err)
	}
	if ev.ID == "" {
		ev.ID = m.Headers().Get(nats.MsgIdHdr)
	}
	if ev.Kind == "" {
		ev.Kind = kindOfSubject(m.Subject())
	}
	if ev.ID == "" || ev.Kind == "" {
		return ev, fmt.Errorf("event on %s has no id or kind", m.Subject())
	}
	return ev, nil
}

// post makes one signed attempt.
func (d *deliverer) post(ctx context.Context, ev event, body []byte, n int) attempt {
	ctx, cancel := context.WithTimeout(ctx, d.ep.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.ep.URL, bytes.NewReader(body))
	if err != nil {
		return attempt{err: err, permanent: true}
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(HeaderEventID, ev.ID)
	req.Header.Set(HeaderEventKind, ev.Kind)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(d.ep.Secret, ts, body))
	req.Header.Set(HeaderAttempt, strconv.Itoa(n))

	start := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		d.m.request(time.Since(start))
		return attempt{err: fmt.Errorf("post: %w", stripURL(err))}
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, snippetLen))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLen))
	_ = resp.Body.Close()
	d.m.request(time.Since(start))

	a := attempt{status: resp.StatusCode}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return a
	}
	a.err = fmt.Errorf("HTTP %s: %q", resp.Status, snippet)
	switch code := resp.StatusCode; {
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests:
	case code >= 400 && code < 500:
		a.permanent = true
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		a.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
	}
	return a
}

// stripURL drops the URL from a client error: it may hold credentials, and
// the endpoint name says which one it was.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// backoff is the delay after failed attempt n (from 1): base doubled n-1
// times, at least retryAfter, at most MaxBackoff.
func backoff(base time.Duration, n int, retryAfter time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < MaxBackoff; i++ {
		d *= 2
	}
	d = max(d, retryAfter)
	return min(d, MaxBackoff)
}

// parseRetryAfter reads a Retry-After value: seconds or an HTTP date.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(min(s, int(MaxBackoff/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// oneLine makes s safe as a header value.
func oneLine(s string) string {
	s = strings.Map(func(c rune) rune {
		if c < ' ' || c == 0x7f {
			return ' '
		}
		return c
	}, s)
	if len(s) > 1024 {
		s = strings.ToValidUTF8(s[:1024], "")
	}
	return s
}
