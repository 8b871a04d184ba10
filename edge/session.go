package edge

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/edge/revoke"
)

// session is one client WebSocket. An idle session costs one goroutine, its
// read loop, parked in a read on a small buffer. The read loop hands each
// frame to a goroutine of the edge's pool (gopool.go), so that the read
// loop's stack stays small, and waits for its checks; a send then joins the
// session's pipeline (pipeline.go) and the read loop reads on, any other
// request runs alone, after the sends read before it. Writes are made by a
// writer that runs, on a pooled goroutine too, only while there is
// something to write (frames, a ping, the goodbye): enqueue starts it, and
// it ends when the queue is drained. The hub's heartbeat asks for the
// pings.
type session struct {
	e      *Edge
	conn   *websocket.Conn
	id     string
	user   string
	device string
	// token is what the revocation checks need of the session's token.
	token revoke.Token
	inHub bool // added to the hub (so removed at the end)
	// ip is the client IP whose connection count the session holds;
	// userHeld: it holds one of its user's connections (edge/limits).
	ip       netip.Addr
	userHeld bool
	opened   time.Time // when the socket was upgraded
	slot     int       // index in its hub shard's list (guarded by the shard)
	// expires is when (Edge.since) the token expires, leeway included;
	// the heartbeat closes the session after it. Set before the hub add.
	expires int64

	// heard and pinged are when (Edge.since) the client last sent a frame
	// or pong, and when the heartbeat last asked for a ping.
	heard  atomic.Int64
	pinged atomic.Int64

	rd reader // the read loop's

	pipe pipe // the sends in flight (pipeline.go)

	// watching is the users whose presence the session watches (guarded
	// by the edge's presence.mu).
	watching map[string]struct{}

	mu        sync.Mutex
	frames    [][]byte // queued frames; holds no memory while empty
	echoes    []string // ids of the session's own appends, their push not yet seen (echo.go)
	ping      bool     // a ping is wanted
	pong      []byte   // the payload of the client's latest ping
	ponged    bool     // a pong is wanted
	writing   bool     // a writer runs; stays true once the last writer has said goodbye
	closed    bool
	code      int
	reason    string
	bye       bool // send a bye frame before the close frame
	reconnect bool
	written   chan struct{} // closed when the last writer has exited after close

	// wdl is the socket's write deadline (Edge.since), only ever read and
	// moved by the writer that runs (writers hand over under mu).
	wdl int64
}

func newSession(e *Edge, conn *websocket.Conn, id string) *session {
	s := &session{e: e, conn: conn, id: id, written: make(chan struct{}), opened: time.Now()}
	s.heard.Store(e.since())
	return s
}

// enqueue queues frame without blocking and starts the writer if it is not
// running. A full queue (SendQueue frames besides the batch being written)
// closes the session as a slow consumer (4008); frames that arrive at an
// empty queue are taken whatever their number: a socket whose writer has
// written everything is keeping up, and a delivery batch (at most the
// FANOUT consumer's 64 entries of a conversation) may hold more frames
// than a small queue.
func (s *session) enqueue(frame []byte) bool {
	return s.enqueueAll([][]byte{frame})
}

// enqueueAll queues frames, in order, like enqueue: all of them, or none
// and the session is closed as a slow consumer when they do not fit.
func (s *session) enqueueAll(frames [][]byte) bool {
	s.mu.Lock()
	return s.enqueueLocked(frames)
}

// enqueuePushes queues the msg push frames like enqueueAll, but those of
// the session's own appends (echo.go). It returns how many it queued.
func (s *session) enqueuePushes(frames [][]byte) int {
	s.mu.Lock()
	if len(s.echoes) > 0 {
		if frames = s.withoutEchoesLocked(frames); len(frames) == 0 {
			s.mu.Unlock()
			return 0
		}
	}
	if !s.enqueueLocked(frames) {
		return 0
	}
	return len(frames)
}

// enqueueLocked is enqueueAll with s.mu held; it unlocks it.
func (s *session) enqueueLocked(frames [][]byte) bool {
	ok, start := s.queueLocked(frames)
	if start {
		s.startWriter()
	}
	return ok
}

// queueLocked queues frames like enqueueLocked (and unlocks s.mu), but
// leaves the writer to the caller: start means it must run one.
func (s *session) queueLocked(frames [][]byte) (ok, start bool) {
	if s.closed {
		s.mu.Unlock()
		return false, false
	}
	if len(s.frames) > 0 && len(s.frames)+len(frames) > s.e.cfg.SendQueue {
		s.mu.Unlock()
		s.e.m.slowConsumers.Inc()
		s.close(protocol.CloseSlowConsumer, "slow consumer: send queue full", true, true)
		return false, false
	}
	s.frames = append(s.frames, frames...)
	start = s.wakeLocked()
	s.mu.Unlock()
	return true, start
}

// queuePing asks the writer for a ping.
func (s *session) queuePing() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.ping = true
	start := s.wakeLocked()
	s.mu.Unlock()
	if start {
		s.startWriter()
	}
}

// queuePong asks the writer to answer the client's ping (only the latest
// needs an answer, RFC 6455 section 5.5.3). The library's own ping handler
// would write from the read loop, past the writer.
func (s *session) queuePong(data []byte) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.pong, s.ponged = data, true
	start := s.wakeLocked()
	s.mu.Unlock()
	if start {
		s.startWriter()
	}
}

// wakeLocked marks the writer running and reports whether the caller must
// start it. s.mu is held.
func (s *session) wakeLocked() bool {
	if s.writing {
		return false
	}
	s.writing = true
	return true
}

// hold keeps what is queued from here on without a writer until release.
func (s *session) hold() {
	s.mu.Lock()
	s.writing = true // what enqueue and close see: no writer is started
	s.mu.Unlock()
}

// release ends a hold: a writer starts for what was queued (or asked) in it.
func (s *session) release() {
	s.mu.Lock()
	s.writing = false
	start := (len(s.frames) > 0 || s.closed || s.ping || s.ponged) && s.wakeLocked()
	s.mu.Unlock()
	if start {
		s.startWriter()
	}
}

// dropQueued forgets the frames queued and not written.
func (s *session) dropQueued() {
	s.mu.Lock()
	s.frames = nil
	s.mu.Unlock()
}

// close asks the writer to send (optionally) a bye frame and a close frame
// with code and reason; the read loop then ends and the socket is closed.
// Only the first call counts.
func (s *session) close(code int, reason string, bye, reconnect bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.code, s.reason, s.bye, s.reconnect = code, reason, bye, reconnect
	start := s.wakeLocked()
	s.mu.Unlock()
	if start {
		s.startWriter()
	}
}

// startWriter runs writeLoop on a pooled goroutine (gopool.go).
func (s *session) startWriter() { s.e.pool.Go((*writer)(s)) }

// writer is a session as the job of its writer.
type writer session

func (w *writer) run() { (*session)(w).writeLoop() }

// writeLoop writes what is queued until nothing is, then exits; after close
// it says goodbye and exits for good.
func (s *session) writeLoop() {
	for s.writeStep() {
	}
}

// writeStep writes what is queued as the running writer. It reports
// whether the writer must go on: false when nothing more is queued (it
// then stops being the writer) or the session is done.
func (s *session) writeStep() bool {
	s.mu.Lock()
	frames, ping, pong, ponged, closed := s.frames, s.ping, s.pong, s.ponged, s.closed
	s.frames, s.ping, s.pong, s.ponged = nil, false, nil, false
	if len(frames) == 0 && !ping && !ponged && !closed {
		s.writing = false
		s.mu.Unlock()
		return false
	}
	s.mu.Unlock()
	if closed {
		s.goodbye(frames)
		s.finish()
		return false
	}
	if !s.write(frames, ping, pong, ponged, s.e.cfg.WriteTimeout) {
		// writing stays true: no other writer starts.
		s.close(protocol.CloseNormal, "", false, false)
		s.finish()
		return false
	}
	s.mu.Lock()
	more := len(s.frames) > 0 || s.ping || s.ponged || s.closed
	if !more {
		s.writing = false
	}
	s.mu.Unlock()
	return more
}

func (s *session) write(frames [][]byte, ping bool, pong []byte, ponged bool, wt time.Duration) bool {
	var ctl []byte
	if ponged {
		ctl = appendFrame(nil, opPong, pong)
	}
	if ping {
		ctl = appendFrame(ctl, opPing, nil)
	}
	return s.writeFrames(ctl, frames, s.writeDeadline(wt)) == nil
}

// writeDeadline returns the write deadline to set for a write bounded by
// wt, or the zero time when the one set before still leaves at least wt:
// moving a socket's deadline updates a runtime timer, and doing it for
// every write cost a third as much as the write itself in a fan-out
// (docs/benchmarks.md, fix 8). A new deadline is 1.5 wt away, so a write is
// cut after wt to 1.5 wt.
func (s *session) writeDeadline(wt time.Duration) time.Time {
	now := s.e.since()
	if s.wdl-now >= int64(wt) {
		return time.Time{}
	}
	d := wt + wt/2
	s.wdl = now + int64(d)
	return time.Now().Add(d)
}

// writeBatch is the most the writer puts into one write call.
const writeBatch = 64 << 10

var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, writeBatch+1024); return &b }}

// writeFrames writes ctl (control frames, framed already), then frames as
// text messages, framed here, in as few write calls as writeBatch allows: a
// burst of pushes to a socket costs one system call, not one per frame.
// Only the writer writes to the socket (pongs and the close frame
// included), so these writes never interleave with the library's. A zero
// deadline keeps the one set before.
func (s *session) writeFrames(ctl []byte, frames [][]byte, deadline time.Time) error {
	if len(ctl) == 0 && len(frames) == 0 {
		return nil
	}
	bp := writeBufs.Get().(*[]byte)
	buf := append((*bp)[:0], ctl...)
	defer func() { *bp = buf[:0]; writeBufs.Put(bp) }()
	nc := s.conn.NetConn()
	if !deadline.IsZero() {
		_ = nc.SetWriteDeadline(deadline)
	}
	for i, f := range frames {
		buf = appendFrame(buf, opText, f)
		if len(buf) < writeBatch && i < len(frames)-1 {
			continue
		}
		if _, err := nc.Write(buf); err != nil {
			return err
		}
		buf = buf[:0]
	}
	if len(buf) > 0 { // control frames alone
		if _, err := nc.Write(buf); err != nil {
			return err
		}
	}
	s.e.m.framesOut.Add(float64(len(frames)))
	return nil
}

// finish ends the read loop with a deadline: one second for the client to
// echo the close frame.
func (s *session) finish() {
	_ = s.conn.SetReadDeadline(time.Now().Add(time.Second))
	close(s.written)
}

// goodbye flushes the frames queued before close (unless the queue
// overflowed), then the bye frame and the close frame.
func (s *session) goodbye(frames [][]byte) {
	deadline := time.Now().Add(s.e.cfg.WriteTimeout)
	if s.code == protocol.CloseSlowConsumer {
		frames = nil
	}
	if s.bye {
		frames = append(frames, protocol.Bye(s.code, s.reason, s.reconnect))
	}
	if s.writeFrames(nil, frames, deadline) != nil {
		return
	}
	_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(s.code, s.reason), deadline)
}

// end closes the session (if nothing did), waits for the writer's goodbye,
// closes the socket and unregisters the session.
func (s *session) end() {
	s.close(protocol.CloseNormal, "", false, false)
	<-s.written
	_ = s.conn.Close()
	s.e.presence.unwatchAll(s)
	if s.inHub {
		s.e.hub.remove(s)
	}
	s.e.ips.Close(s.ip)
	if s.userHeld {
		s.e.limits.Disconnect(s.user)
	}
	s.e.m.connections.Dec()
	s.e.wg.Done()
}

// heardNow records that the client sent something. The heartbeat closes
// a session not heard from for two ping intervals (no read deadline: moving
// one per frame and pong costs a timer update each).
func (s *session) heardNow() { s.heard.Store(s.e.since()) }

// reader is the read loop's state: it is owned by the read loop and by the
// one request goroutine the read loop waits for (sends in the pipeline do
// not use it).
type reader struct {
	limiter bucket
	bad     int
	// typing is the typing token bucket per conversation.
	typing map[string]*bucket
}

// readLoop reads requests until the socket fails or closes, then waits for
// the sends in flight and ends the session.
func (s *session) readLoop() {
	defer func() {
		s.pipe.waitBelow(1)
		s.end()
	}()
	s.heardNow()
	_ = s.conn.SetReadDeadline(time.Time{}) // the auth frame's
	s.conn.SetPongHandler(func(string) error { s.heardNow(); return nil })
	// The writer answers pings and sends the close frame: only it writes to
	// the socket (the library's handlers would write from here).
	s.conn.SetPingHandler(func(data string) error { s.heardNow(); s.queuePong([]byte(data)); return nil })
	s.conn.SetCloseHandler(func(int, string) error { return nil })
	s.rd.limiter = newBucket(s.e.cfg.Rate, s.e.cfg.Burst)
	for {
		mt, fr, err := s.conn.NextReader()
		if err != nil {
			s.readFailed(err)
			return
		}
		r := requests.Get().(*request)
		r.data, err = readFrame(fr, r.data[:0])
		if err != nil {
			r.put()
			s.readFailed(err)
			return
		}
		s.heardNow()
		s.e.m.framesIn.Inc()
		// The request runs on a pooled goroutine (its deep calls would
		// grow the read loop's stack, which an idle socket then keeps)
		// while the read loop waits for it: for all of it, or until a
		// send has joined the pipeline, which then owns it.
		r.s, r.mt = s, mt
		s.e.pool.Go(r)
		switch <-r.done { // r is not to be touched after reqPiped
		case reqDone:
			r.put()
		case reqClosing:
			r.put()
			return
		case reqPiped:
			s.pipe.waitBelow(s.e.cfg.SendWindow) // room in the window
		}
	}
}

// request is a client frame the read loop hands to a pooled goroutine
// (its buffer goes back to the pool with it: nothing keeps the frame's
// bytes, protocol.Decode copies what it takes).
type request struct {
	s    *session
	mt   int
	data []byte
	// done tells the read loop the request is answered (reqDone,
	// reqClosing: the session is closing) or has joined the pipeline
	// (reqPiped), which owns it from then on and puts it back in the pool
	// once it is answered.
	done chan reqState
	// ctx and echo are a piped send's context and echo id (start).
	ctx  context.Context
	echo string
	// req is the frame decoded: admit decodes into it, and nothing keeps
	// it once the request is answered.
	req protocol.Request
}

// maxPooledFrame is the largest frame buffer kept for the next frame.
const maxPooledFrame = 16 << 10

// reqState is what a request tells the read loop.
type reqState uint8

const (
	reqDone reqState = iota
	reqClosing
	reqPiped
)

var requests = sync.Pool{New: func() any { return &request{data: make([]byte, 0, 1024), done: make(chan reqState, 1)} }}

func (r *request) run() {
	s := r.s
	ok, admitted := s.admit(r.mt, r.data, &r.req)
	if !admitted || !s.pipelined(&r.req) {
		if admitted {
			s.pipe.waitBelow(1) // the sends read before it are answered
			s.start(r)
			s.reply(s.answer(r.ctx, &r.req, r.echo))
		}
		st := reqDone
		if !ok {
			st = reqClosing
		}
		r.done <- st
		return
	}
	s.start(r)
	if s.enter(r) { // r is the pipeline's from here
		s.runConv(r)
	}
}

// put gives r back to the pool.
func (r *request) put() {
	r.s, r.ctx, r.echo = nil, nil, ""
	r.req = protocol.Request{} // holds none of the request's strings
	if cap(r.data) > maxPooledFrame {
		r.data = make([]byte, 0, 1024)
	}
	requests.Put(r)
}

// readFrame appends the rest of fr's message to b (io.ReadAll into a
// buffer of the caller's).
func readFrame(fr io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := fr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
	}
}

// admit makes the checks of one client frame, decoded into req, in the
// order the frames were read, and answers a frame they refuse: admitted
// means req is to run; ok false means the session is closing.
func (s *session) admit(mt int, data []byte, req *protocol.Request) (ok, admitted bool) {
	rd := &s.rd
	if mt != websocket.TextMessage {
		s.reply(protocol.Err("", protocol.CodeBadJSON, "binary frames are not supported: send JSON text frames"))
		return true, false
	}
	if err := protocol.DecodeInto(data, req); err != nil {
		rd.bad++
		s.e.m.errors.WithLabelValues(string(protocol.CodeOf(err))).Inc()
		s.reply(protocol.ErrFrame("", err))
		if rd.bad >= protocol.DefaultMaxBadFrames {
			s.close(protocol.CloseBadProtocol, "too many bad frames", true, false)
			return false, false
		}
		return true, false
	}
	rd.bad = 0
	if !rd.limiter.take(time.Now()) {
		s.e.m.errors.WithLabelValues(string(protocol.CodeRateLimited)).Inc()
		s.reply(protocol.Err(req.ID, protocol.CodeRateLimited, "rate limit exceeded: slow down and retry"))
		return true, false
	}
	if req.Op == protocol.OpAuth {
		s.reply(protocol.Err(req.ID, protocol.CodeBadFrame, "already authenticated"))
		return true, false
	}
	return true, true
}

// reply queues frame like enqueue, but when no writer runs the caller
// writes it itself rather than wake a goroutine to: a reply is the last
// thing a request's goroutine does, and only that session's read loop
// waits for it. What was queued during that write goes to a pooled writer:
// the request's goroutine does not stay the writer, which would hold the
// read loop for as long as pushes kept coming (TestReplyWriterHandsOn).
func (s *session) reply(frame []byte) {
	s.replyAll([][]byte{frame})
}

// replyAll is reply for frames queued together (a pipelined run's).
func (s *session) replyAll(frames [][]byte) {
	s.mu.Lock()
	if _, start := s.queueLocked(frames); start && s.writeStep() {
		s.startWriter()
	}
}

// readFailed maps a read error to the close the client gets.
func (s *session) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		s.close(protocol.CloseTooBig, "frame too big", false, false)
	case errors.As(err, &ne) && ne.Timeout():
		s.close(protocol.CloseIdleTimeout, "idle timeout", true, true)
	default:
		s.close(protocol.CloseNormal, "", false, false)
	}
}
