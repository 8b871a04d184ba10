package edge

import (
	"errors"
	"strings"
	"time"

	"github.com/natter-im/natter/edge/auth"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/edge/revoke"
)

// Revocations and bans: the edge keeps the REVOKED bucket in memory
// (revoke.View, fed by a watcher) and checks a token against it when a
// socket or REST request presents it, and every open session when an
// entry is added. Frames cost nothing: a session's token is checked once.

// admitError is why a verified token is refused: its protocol code, HTTP
// status, close code and message.
type admitError struct {
	code   protocol.Code
	status int
	close  int
	msg    string
}

func (a *admitError) Error() string { return a.msg }

// admit checks a verified token against the revocations and bans; nil
// means it may go on.
func (e *Edge) admit(t revoke.Token) *admitError {
	err := e.revoked.Check(t, time.Now())
	switch {
	case err == nil:
		return nil
	case errors.Is(err, revoke.ErrBanned):
		return &admitError{code: protocol.CodeBanned, status: protocol.CodeBanned.HTTPStatus(), close: protocol.CloseBanned,
			msg: strings.TrimPrefix(err.Error(), revoke.ErrBanned.Error()+": ")}
	default:
		return &admitError{code: protocol.CodeTokenRevoked, status: protocol.CodeTokenRevoked.HTTPStatus(), close: protocol.CloseTokenRevoked,
			msg: strings.TrimPrefix(err.Error(), revoke.ErrRevoked.Error()+": ")}
	}
}

// tokenOf is what the checks need of a token used from device (the
// token's dev claim wins).
func tokenOf(cl auth.Claims, device string) revoke.Token {
	if cl.Device != "" {
		device = cl.Device
	}
	return revoke.Token{ID: cl.ID, User: cl.User, Device: device, IssuedAt: cl.IssuedAt}
}

// enforceRevocations closes every session whose token a new entry revokes
// or whose user it bans (the watcher calls it; entries are rare, so it
// looks at every session).
func (e *Edge) enforceRevocations(string) {
	for _, s := range e.hub.sessions() {
		if a := e.admit(s.token); a != nil {
			e.log.Info("closing revoked session", "user", s.user, "session", s.id, "code", a.code)
			e.m.errors.WithLabelValues(string(a.code)).Inc()
			s.close(a.close, closeReason(a), true, false)
		}
	}
}

// closeReason is a close frame's reason: at most 123 bytes.
func closeReason(a *admitError) string {
	if len(a.msg) > 120 {
		return a.msg[:120]
	}
	return a.msg
}
