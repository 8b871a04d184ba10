package edge

import (
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/msglog"
)

// A connection is not pushed the log entries it appended itself (send,
// msg.edit, msg.delete): their ack carries the seq, and the client takes
// the entry from its request and the ack (docs/protocol.md, "msg"). The
// user's other connections get the push as usual. The session keeps the
// ids of its appends whose push has not come yet (s.echoes, under s.mu)
// and drops the push that matches one; the id is known before the append
// (msglog.MessageID), so a push cannot come before it is kept.

// maxEchoes, with the session's send window (Config.SendWindow), bounds a
// session's kept ids: a session has up to a window of appends in flight
// and a few whose push is still on its way; an id whose push never comes
// (the append failed after all, or the delivery was lost) is dropped after
// that many newer ones. A push that finds its id dropped is sent: the
// client drops it as a duplicate.
const maxEchoes = 16

// echoID returns the id of the entry r appends from user, "" for a
// request that appends none.
func echoID(user string, r *protocol.Request) string {
	switch r.Op {
	case protocol.OpSend, protocol.OpMsgEdit, protocol.OpMsgDelete:
		if r.Conv != "" && r.Cmid != "" {
			return msglog.MessageID(r.Conv, user, r.Cmid)
		}
	}
	return ""
}

// expectEcho keeps id: its push is not to be sent to this session.
func (s *session) expectEcho(id string) {
	s.mu.Lock()
	if len(s.echoes) >= maxEchoes+s.e.cfg.SendWindow {
		s.echoes = append(s.echoes[:0], s.echoes[1:]...)
	}
	s.echoes = append(s.echoes, id)
	s.mu.Unlock()
}

// forgetEcho drops id: its append failed or was a retry of a stored one
// (no push follows for it).
func (s *session) forgetEcho(id string) {
	s.mu.Lock()
	for i, e := range s.echoes {
		if e == id {
			s.dropEchoLocked(i)
			break
		}
	}
	s.mu.Unlock()
}

// dropEchoLocked removes the i-th kept id. s.mu is held.
func (s *session) dropEchoLocked(i int) {
	s.echoes = append(s.echoes[:i], s.echoes[i+1:]...)
	if len(s.echoes) == 0 {
		s.echoes = nil // holds no memory while empty
	}
}

// echoLocked reports whether id is a kept id, and forgets it. s.mu is held.
func (s *session) echoLocked(id []byte) bool {
	for i, e := range s.echoes {
		if e == string(id) {
			s.dropEchoLocked(i)
			return true
		}
	}
	return false
}

// withoutEchoesLocked returns frames without the pushes of the kept ids
// (a new slice when it drops some), forgetting those ids. s.mu is held.
func (s *session) withoutEchoesLocked(frames [][]byte) [][]byte {
	out := frames
	for i, f := range frames {
		id, ok := protocol.PushID(f)
		if !ok || !s.echoLocked(id) {
			if len(out) < len(frames) {
				out = append(out, f)
			}
			continue
		}
		if len(out) == len(frames) {
			out = append(make([][]byte, 0, len(frames)-1), frames[:i]...)
		}
	}
	return out
}
