package edge

import (
	"context"
	"sync"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

// A connection's sends are pipelined: the read loop goes on reading while
// they are appended, up to Config.SendWindow of them in flight (read, not
// yet answered). What holds (docs/protocol.md, "Pipelining"):
//
//   - a connection's sends to one conversation are appended one after
//     another in the order they were read: the first of them runs its
//     conversation (runConv) and appends those that queue behind it, so
//     their seqs follow the read order; sends to different conversations
//     run at once;
//   - every request is answered; the replies of the sends a run takes from
//     its queue at once (those read while the sends before them were
//     appended) are queued together (one write when the writer is idle);
//   - any other request waits until every send read before it is answered
//     (a barrier), then runs as the only request of the connection, as
//     before: the read loop reads nothing while it runs;
//   - the checks made per frame (decode, bad frames, the connection's rate,
//     the echo id kept) run in read order, one frame at a time, before a
//     send joins the pipeline;
//   - a session that ends waits for its sends in flight (each bounded by
//     its request's deadline); their replies are dropped, as any reply
//     after close.
//
// A batch of sends to one conversation is appended one send at a time
// (each a compare-and-set publish that waits for its ack): a log entry's
// back window names the stream sequence of the entry before it, which only
// that entry's ack tells (docs/design.md, "Pipelined sends").

// pipe is a session's sends in flight.
type pipe struct {
	mu sync.Mutex
	n  int // sends admitted and not yet answered
	// want > 0: a waiter (the read loop, or the request it waits for) waits
	// for n < want; wake tells it to look again.
	want int
	wake chan struct{}
	// convs has a key per conversation with a send of the session in
	// flight: the sends queued behind the one that runs, in read order.
	convs map[string][]*request
}

// waitBelow waits until fewer than limit sends are in flight. Only one
// goroutine of a session waits at a time: the read loop (for room in the
// window, or at the end) or the one request it waits for (a barrier).
func (p *pipe) waitBelow(limit int) {
	p.mu.Lock()
	for p.n >= limit {
		p.want = limit
		if p.wake == nil {
			p.wake = make(chan struct{}, 1)
		}
		w := p.wake
		p.mu.Unlock()
		<-w
		p.mu.Lock()
	}
	p.want = 0
	p.mu.Unlock()
}

// answeredLocked counts n sends answered and wakes the waiter it lets go
// on. p.mu is held.
func (p *pipe) answeredLocked(n int) {
	p.n -= n
	if p.want > 0 && p.n < p.want {
		p.want = 0
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// pipelined reports whether req joins the pipeline: a send, with a window
// of more than one.
func (s *session) pipelined(req *protocol.Request) bool {
	return req.Op == protocol.OpSend && s.e.cfg.SendWindow > 1
}

// enter admits the send r to the pipeline: it counts r in flight and
// queues it behind a send of its conversation that runs, or else makes r
// the one that runs it (first true: the caller runs runConv(r)). It tells
// the read loop (reqPiped) before a run can take r: once taken, r may be
// answered and back in the pool, its done channel another request's.
func (s *session) enter(r *request) (first bool) {
	p := &s.pipe
	conv := r.req.Conv
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	r.done <- reqPiped // buffered: the read loop takes it
	if q, ok := p.convs[conv]; ok {
		p.convs[conv] = append(q, r)
		return false
	}
	if p.convs == nil {
		p.convs = make(map[string][]*request, 1)
	}
	p.convs[conv] = nil
	return true
}

// runConv appends r, then the sends of the session to r's conversation
// that queued meanwhile, in read order, until none is left: it takes the
// whole queue at a time, appends its sends one after another and queues
// their replies together; each request goes back to the pool once
// answered. r's reply waits for no other send (a SendAll batch written at
// once takes two writes: r's, then the rest): a lone send's reply, or the
// first of a burst's, is not held for the sends behind it. The Go SDK
// applies each ack on its caller's goroutine; a later Send's ack that
// came in the same read as an earlier one's could be applied first, which
// looks like a gap to it and costs a sync
// (client TestWriterBatchesQueuedFramesInOrder).
func (s *session) runConv(r *request) {
	p := &s.pipe
	conv := r.req.Conv
	var fa [8][]byte
	frames := append(fa[:0], s.answer(r.ctx, &r.req, r.echo))
	s.replyAll(frames)
	fa[0] = nil
	r.put()
	n := 1                      // answered, not yet counted
	var batch, spare []*request // spare: a queue taken before, reused for the next one
	for {
		p.mu.Lock()
		p.answeredLocked(n)
		if batch = p.convs[conv]; len(batch) == 0 {
			delete(p.convs, conv)
			p.mu.Unlock()
			return
		}
		p.convs[conv], spare = spare, nil
		p.mu.Unlock()
		frames = fa[:0]
		for _, q := range batch {
			frames = append(frames, s.answer(q.ctx, &q.req, q.echo))
		}
		s.replyAll(frames)
		clear(frames)
		for i, q := range batch {
			q.put()
			batch[i] = nil
		}
		n, spare = len(batch), batch[:0]
	}
}

// answer runs a request the frame checks admitted and returns its reply
// frame. echo is the id of the entry it appends ("" for none), kept
// already by expectEcho.
func (s *session) answer(ctx context.Context, req *protocol.Request, echo string) []byte {
	var res any
	var rerr error
	switch req.Op {
	case protocol.OpPresenceSub:
		res, rerr = s.presenceSub(ctx, req.Users)
	case protocol.OpPresenceUnsub:
		s.e.presence.unwatch(s, req.Users)
		res = struct{}{}
	case protocol.OpTyping:
		res, rerr = s.typing(ctx, req)
	default:
		res, rerr = s.e.do(ctx, s.user, s.device, req)
	}
	if ack, _ := res.(natter.Ack); echo != "" && (rerr != nil || ack.Dup) {
		s.forgetEcho(echo) // no push follows (or one may, and is sent)
	}
	if rerr != nil {
		code, msg := s.e.errorCode(rerr)
		s.e.m.errors.WithLabelValues(string(code)).Inc()
		return protocol.Err(req.ID, code, msg)
	}
	return protocol.Result(req.ID, res)
}

// start readies an admitted request to run: its context (deadlines.go;
// a request in flight when the socket closes finishes and its reply is
// dropped) and its echo id, kept before the append so that its push
// cannot come first.
func (s *session) start(r *request) {
	r.ctx = s.e.deadlines.get(time.Now())
	if r.echo = echoID(s.user, &r.req); r.echo != "" {
		s.expectEcho(r.echo)
	}
}
