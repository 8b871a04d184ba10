package edge

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/natter-im/natter/edge/protocol"
)

// session is one client WebSocket. The read loop runs in the upgrade
// handler's goroutine and handles requests one at a time (so one device's
// sends keep their order); a writer goroutine owns every write, fed by a
// bounded queue.
type session struct {
	e      *Edge
	conn   *websocket.Conn
	id     string
	user   string
	device string

	out       sendQueue
	done      chan struct{} // closed by close(): the writer says goodbye and exits
	closeOnce sync.Once
	code      int
	reason    string
	bye       bool // send a bye frame before the close frame
	reconnect bool
	written   chan struct{} // closed when the writer has exited
}

func newSession(e *Edge, conn *websocket.Conn, id string) *session {
	return &session{
		e: e, conn: conn, id: id,
		out:     sendQueue{max: e.cfg.SendQueue, ready: make(chan struct{}, 1)},
		done:    make(chan struct{}),
		written: make(chan struct{}),
	}
}

// enqueue queues frame without blocking. A full queue closes the session as
// a slow consumer (4008).
func (s *session) enqueue(frame []byte) bool {
	select {
	case <-s.done:
		return false
	default:
	}
	if s.out.push(frame) {
		return true
	}
	s.e.m.slowConsumers.Inc()
	s.close(protocol.CloseSlowConsumer, "slow consumer: send queue full", true, true)
	return false
}

// sendQueue is a socket's bounded queue of outgoing frames. It holds no
// memory while empty (a channel of SendQueue slots would cost ~12 KiB per
// idle socket).
type sendQueue struct {
	mu     sync.Mutex
	frames [][]byte
	max    int
	ready  chan struct{} // a token when frames may be waiting
}

// push queues f unless max frames are queued already.
func (q *sendQueue) push(f []byte) bool {
	q.mu.Lock()
	if len(q.frames) >= q.max {
		q.mu.Unlock()
		return false
	}
	q.frames = append(q.frames, f)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// take removes and returns every queued frame.
func (q *sendQueue) take() [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	f := q.frames
	q.frames = nil
	return f
}

// close asks the writer to send (optionally) a bye frame and a close frame
// with code and reason, then close the socket. Only the first call counts.
func (s *session) close(code int, reason string, bye, reconnect bool) {
	s.closeOnce.Do(func() {
		s.code, s.reason, s.bye, s.reconnect = code, reason, bye, reconnect
		close(s.done)
	})
}

// writeLoop sends queued frames and pings until close.
func (s *session) writeLoop() {
	defer close(s.written)
	// Closing a hijacked fasthttp conn is a no-op (fasthttp closes it when
	// the handler returns), so the read loop is ended with a deadline: one
	// second for the client to echo the close frame.
	defer s.conn.SetReadDeadline(time.Now().Add(time.Second))
	ping := time.NewTicker(s.e.cfg.PingInterval)
	defer ping.Stop()
	wt := s.e.cfg.WriteTimeout
	for {
		select {
		case <-s.out.ready:
			for _, f := range s.out.take() {
				_ = s.conn.SetWriteDeadline(time.Now().Add(wt))
				if err := s.conn.WriteMessage(websocket.TextMessage, f); err != nil {
					s.close(protocol.CloseNormal, "", false, false)
					return
				}
				s.e.m.framesOut.Inc()
			}
		case <-ping.C:
			if err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(wt)); err != nil {
				s.close(protocol.CloseNormal, "", false, false)
				return
			}
		case <-s.done:
			s.goodbye()
			return
		}
	}
}

// goodbye flushes what is queued (unless the queue overflowed), then the
// bye frame and the close frame.
func (s *session) goodbye() {
	deadline := time.Now().Add(s.e.cfg.WriteTimeout)
	_ = s.conn.SetWriteDeadline(deadline)
	if s.code != protocol.CloseSlowConsumer {
		for _, f := range s.out.take() {
			if s.conn.WriteMessage(websocket.TextMessage, f) != nil {
				return
			}
		}
	}
	if s.bye {
		_ = s.conn.WriteMessage(websocket.TextMessage, protocol.Bye(s.code, s.reason, s.reconnect))
	}
	_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(s.code, s.reason), deadline)
}

// readLoop reads and handles requests until the socket fails or closes.
func (s *session) readLoop(ctx context.Context) {
	cfg := s.e.cfg
	idle := 2 * cfg.PingInterval
	_ = s.conn.SetReadDeadline(time.Now().Add(idle))
	s.conn.SetPongHandler(func(string) error { return s.conn.SetReadDeadline(time.Now().Add(idle)) })
	limiter := newBucket(cfg.Rate, cfg.Burst)
	bad := 0
	for {
		mt, data, err := s.conn.ReadMessage()
		if err != nil {
			s.readFailed(err)
			return
		}
		_ = s.conn.SetReadDeadline(time.Now().Add(idle))
		s.e.m.framesIn.Inc()
		if mt != websocket.TextMessage {
			s.reply(protocol.Err("", protocol.CodeBadJSON, "binary frames are not supported: send JSON text frames"))
			continue
		}
		req, err := protocol.Decode(data)
		if err != nil {
			bad++
			s.e.m.errors.WithLabelValues(string(protocol.CodeOf(err))).Inc()
			s.reply(protocol.ErrFrame("", err))
			if bad >= protocol.DefaultMaxBadFrames {
				s.close(protocol.CloseBadProtocol, "too many bad frames", true, false)
				return
			}
			continue
		}
		bad = 0
		if !limiter.take(time.Now()) {
			s.e.m.errors.WithLabelValues(string(protocol.CodeRateLimited)).Inc()
			s.reply(protocol.Err(req.ID, protocol.CodeRateLimited, "rate limit exceeded: slow down and retry"))
			continue
		}
		if req.Op == protocol.OpAuth {
			s.reply(protocol.Err(req.ID, protocol.CodeBadFrame, "already authenticated"))
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		res, rerr := s.e.do(rctx, s.user, s.device, req)
		cancel()
		if rerr != nil {
			s.replyErr(req.ID, rerr)
			continue
		}
		s.reply(protocol.Result(req.ID, res))
	}
}

func (s *session) reply(frame []byte) { s.enqueue(frame) }

func (s *session) replyErr(id string, err error) {
	code, msg := s.e.errorCode(err)
	s.e.m.errors.WithLabelValues(string(code)).Inc()
	s.reply(protocol.Err(id, code, msg))
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
