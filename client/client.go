package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/subjects"
)

// Client is a connection to natter that survives disconnects: it
// reconnects, resends and resyncs by itself. Its methods are safe for
// concurrent use.
type Client struct {
	cfg Config
	log *slog.Logger
	ids atomic.Uint64 // request ids

	cmu    sync.Mutex
	cn     *conn         // the live connection, nil while reconnecting
	up     chan struct{} // closed while cn != nil
	user   string
	device string

	d     delivery
	msgs  chan natter.Message
	watch watchSet // users whose presence is watched
	// presence and typing carry those pushes (best effort: dropped when
	// full); closed with done.
	presence chan protocol.PresenceState
	typing   chan protocol.TypingFrame
	// convEvents carries the conversations' changes (convevents.go), revs
	// what it told so far.
	convEvents chan protocol.ConvFrame
	reads      chan protocol.ReadFrame
	reactions  chan protocol.ReactionFrame
	revs       convRevs
	wake       chan struct{} // a conversation needs a sync
	qsig       chan struct{} // the pump has work
	room       chan struct{} // the queue has room again
	stats      counters

	first     chan struct{} // closed when the first sync reply is applied
	firstOnce sync.Once

	quit     chan struct{} // closed when the client stops (Close or a fatal error)
	quitOnce sync.Once
	cancel   context.CancelFunc // ends run's context
	err      error              // the fatal error, set before quit is closed
	wg       sync.WaitGroup
	done     chan struct{} // closed when every goroutine has exited

	authFails int // connections closed with 4001 in a row (used by run only)
}

// Dial connects to the first of cfg.URLs that accepts the token (each is
// tried once, in order), waits for the hello, runs the first sync and
// returns. From then on the client keeps itself connected until [Client.Close]
// or a fatal error ([Client.Err]). If ctx ends before the first sync is
// done, Dial closes the client and returns ctx's error.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("client: Config.URLs: at least one edge URL is required")
	}
	if cfg.Token == "" && cfg.TokenFunc == nil {
		return nil, errors.New("client: Config.Token or Config.TokenFunc is required")
	}
	if cfg.Device != "" && subjects.ValidID(cfg.Device) != nil {
		return nil, fmt.Errorf("client: Config.Device %q: must be 1..64 characters of [A-Za-z0-9_-]", cfg.Device)
	}
	if cfg.SyncLimit < 0 || cfg.SyncLimit > protocol.MaxSyncLimit {
		return nil, fmt.Errorf("client: Config.SyncLimit %d: must be 0..%d", cfg.SyncLimit, protocol.MaxSyncLimit)
	}
	for conv := range cfg.Cursors {
		if subjects.ValidID(conv) != nil {
			return nil, fmt.Errorf("client: Config.Cursors: %q is not a conversation id", conv)
		}
	}
	cfg.URLs = append([]string(nil), cfg.URLs...)
	cfg = cfg.withDefaults()
	c := &Client{
		cfg: cfg, log: cfg.Logger,
		up:         make(chan struct{}),
		msgs:       make(chan natter.Message, cfg.Buffer),
		presence:   make(chan protocol.PresenceState, cfg.EventBuffer),
		typing:     make(chan protocol.TypingFrame, cfg.EventBuffer),
		convEvents: make(chan protocol.ConvFrame, cfg.EventBuffer),
		reads:      make(chan protocol.ReadFrame, cfg.EventBuffer),
		reactions:  make(chan protocol.ReactionFrame, cfg.EventBuffer),
		revs:       convRevs{revs: map[string]int64{}, gone: map[string]bool{}, pushed: map[string]uint64{}},
		wake:       make(chan struct{}, 1),
		qsig:       make(chan struct{}, 1),
		room:       make(chan struct{}, 1),
		first:      make(chan struct{}),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	c.d.init(cfg.Cursors)

	var errs []error
	var cn *conn
	for i := range cfg.URLs {
		var err error
		if cn, err = c.dial(ctx, i); err == nil {
			break
		}
		errs = append(errs, unfatal(err))
		if isFatal(err) || ctx.Err() != nil {
			break
		}
	}
	if cn == nil {
		return nil, errors.Join(errs...)
	}
	c.stats.connects.Add(1)
	life, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.wg.Add(2)
	go c.run(life, cn)
	go c.pump()
	go func() {
		c.wg.Wait()
		// Every reader has exited: nothing sends on these any more.
		close(c.presence)
		close(c.typing)
		close(c.reads)
		close(c.reactions)
		close(c.convEvents)
		close(c.done)
	}()

	select {
	case <-c.first:
		return c, nil
	case <-c.quit:
		_ = c.Close()
		return nil, c.stopErr()
	case <-ctx.Done():
		_ = c.Close()
		return nil, fmt.Errorf("client: dial: waiting for the first sync: %w", ctx.Err())
	}
}

// User is the authenticated user, as the edge announced it.
func (c *Client) User() string {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	return c.user
}

// Device is the device id in use, as the edge announced it.
func (c *Client) Device() string {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	return c.device
}

// Err returns the error that stopped the client (a rejected token, a
// failing TokenFunc, a protocol violation the edge closed the connection
// for), or nil while it runs and after a plain [Client.Close].
func (c *Client) Err() error {
	select {
	case <-c.quit:
		return c.err
	default:
		return nil
	}
}

// Done is closed when the client has stopped, after Close or a fatal error
// ([Client.Err]); the Messages, PresenceEvents, TypingEvents,
// ReadEvents and ReactionEvents channels are closed by then.
func (c *Client) Done() <-chan struct{} { return c.done }

// Close disconnects (sending the last delivered cursors first), stops every
// goroutine and closes the Messages channel; messages still in the channel
// can be read after Close. Messages queued inside the client but not yet in
// the channel are dropped and not counted in [Client.Cursors], so a client
// dialed with those cursors gets them again. Safe to call twice.
func (c *Client) Close() error {
	c.stop(nil)
	<-c.done
	return nil
}

func (c *Client) stop(err error) {
	c.quitOnce.Do(func() {
		c.err = err
		close(c.quit)
		if c.cancel != nil {
			c.cancel()
		}
	})
}

func (c *Client) quitting() bool {
	select {
	case <-c.quit:
		return true
	default:
		return false
	}
}

// stopErr is what calls return once the client has stopped.
func (c *Client) stopErr() error {
	if c.err != nil {
		return c.err
	}
	return ErrClosed
}

// current returns the live connection, waiting for one while the client
// reconnects.
func (c *Client) current(ctx context.Context) (*conn, error) {
	for {
		c.cmu.Lock()
		cn, up := c.cn, c.up
		c.cmu.Unlock()
		if cn != nil {
			return cn, nil
		}
		select {
		case <-up:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.quit:
			return nil, c.stopErr()
		}
	}
}

func (c *Client) setConn(cn *conn) {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	c.cn = cn
	c.user, c.device = cn.hello.User, cn.hello.Device
	close(c.up)
}

// connGone is called by the reader as it exits.
func (c *Client) connGone(cn *conn) {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	if c.cn == cn {
		c.cn = nil
		c.up = make(chan struct{})
	}
	close(cn.done)
}

// run serves one connection after the other until the client stops. ctx
// ends when the client stops.
func (c *Client) run(ctx context.Context, cn *conn) {
	defer c.wg.Done()
	tickEvery := c.cfg.AutoAck
	if tickEvery <= 0 {
		tickEvery = defaultAutoAck
	}
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	for {
		c.serve(cn, tick.C)
		if c.quitting() {
			return
		}
		delay, step, err := c.afterClose(cn)
		if err != nil {
			c.log.Warn("client stopped", "err", err)
			c.stop(err)
			return
		}
		if cn = c.reconnect(ctx, (cn.idx+step)%len(c.cfg.URLs), delay); cn == nil {
			return
		}
	}
}

// serve runs cn (its reader and its sync loop) until it ends or the client
// stops.
func (c *Client) serve(cn *conn, tick <-chan time.Time) {
	c.setConn(cn)
	c.log.Info("connected", "url", c.cfg.URLs[cn.idx], "user", cn.hello.User, "session", cn.hello.Session)
	cn.start()
	var wg sync.WaitGroup
	// The watched users' presence is subscribed again once the first sync
	// of the connection has completed: the device catches up on its
	// messages first, and in a reconnect storm the edges and the
	// conversations service answer the syncs before the presence
	// subscribes (whose authorisation then finds the user's list cached).
	wg.Add(1)
	go func() { defer wg.Done(); c.syncLoop(cn, tick, cn.synced) }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-cn.synced:
			c.resubscribe(cn)
		case <-cn.done:
		case <-c.quit:
		}
	}()
	select {
	case <-cn.done:
	case <-c.quit:
		if c.cfg.AutoAck > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), min(c.cfg.RequestTimeout, 2*time.Second))
			c.sendAcks(ctx, cn, 0)
			cancel()
		}
		cn.close(protocol.CloseNormal, "client closed")
	}
	wg.Wait()
	c.log.Info("disconnected", "url", c.cfg.URLs[cn.idx], "session", cn.hello.Session, "code", cn.closeCode, "err", cn.readErr)
}

// afterClose decides from how cn ended when to reconnect and whether to
// move on to the next URL; an error stops the client.
func (c *Client) afterClose(cn *conn) (delay time.Duration, step int, err error) {
	code, reason, reconnect := cn.closeCode, "", true
	if cn.bye != nil {
		code, reason, reconnect = cn.bye.Code, cn.bye.Reason, cn.bye.Reconnect
	}
	if code != protocol.CloseUnauthorized || time.Since(cn.started) > time.Minute {
		c.authFails = 0
	}
	switch code {
	case protocol.CloseUnauthorized, protocol.CloseTokenRevoked:
		if c.cfg.TokenFunc == nil {
			ec := protocol.CodeUnauthorized
			if code == protocol.CloseTokenRevoked {
				ec = protocol.CodeTokenRevoked
			}
			return 0, 0, &Error{Op: "connect", Code: ec, Msg: fmt.Sprintf("the edge closed the connection (%d %s) and there is no TokenFunc for a new token", code, reason)}
		}
		// Back off when fresh tokens keep getting closed soon after the
		// connect (a TokenFunc that hands out a cached, expired token the
		// edge still accepts within its leeway), instead of spinning.
		c.authFails++
		return c.backoff(c.authFails - 1), 0, nil
	case protocol.CloseBanned:
		return 0, 0, &Error{Op: "connect", Code: protocol.CodeBanned, Msg: "the edge closed the connection (4004 " + reason + ")"}
	case protocol.ClosePolicy, protocol.CloseTooBig, protocol.CloseBadProtocol:
		return 0, 0, fmt.Errorf("client: the edge closed the connection with %d %q: a client bug, not retrying", code, reason)
	case protocol.CloseGoingAway:
		// Lame duck: the edge spreads its closes, so a small jitter is enough.
		return c.jitter(c.cfg.Backoff), 1, nil
	}
	if !reconnect {
		return 0, 0, fmt.Errorf("client: the edge closed the connection with %d %q and said not to reconnect", code, reason)
	}
	return c.jitter(c.cfg.Backoff), 0, nil
}

// reconnect dials Config.URLs starting at idx, moving on to the next URL
// after every failure, with exponential back-off, until it connects or the
// client stops (nil).
func (c *Client) reconnect(ctx context.Context, idx int, delay time.Duration) *conn {
	for attempt := 1; ; attempt++ {
		if !c.sleep(ctx, delay) {
			return nil
		}
		cn, err := c.dial(ctx, idx)
		if err == nil {
			c.stats.connects.Add(1)
			c.stats.reconnects.Add(1)
			return cn
		}
		if ctx.Err() != nil {
			return nil
		}
		if isFatal(err) {
			c.log.Warn("client stopped", "err", err)
			c.stop(unfatal(err))
			return nil
		}
		c.log.Info("reconnect failed", "url", c.cfg.URLs[idx], "attempt", attempt, "err", err)
		idx = (idx + 1) % len(c.cfg.URLs)
		delay = c.backoff(attempt)
	}
}

// backoff is the delay before retry number attempt (0 = the first):
// exponential with full jitter.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.MaxBackoff
	if attempt < 30 {
		d = min(d, c.cfg.Backoff<<attempt)
	}
	return c.jitter(d)
}

func (c *Client) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d) + 1
}

// sleep waits d; false when ctx ended or the client stopped first.
func (c *Client) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-c.quit:
		return false
	}
}

// pause waits d; false when done was closed or the client stopped first.
func (c *Client) pause(d time.Duration, done <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	case <-c.quit:
		return false
	}
}
