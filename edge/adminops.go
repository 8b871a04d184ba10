package edge

import (
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/subjects"
)

// The admin API's requests to every edge (internal/admin gathers the
// answers): the sessions of a user, and closing them. Frozen
// conversations are entries of the REVOKED view.

// AdminRequest is the body of an AdminSessions or AdminDisconnect request.
type AdminRequest struct {
	User string `json:"user"`
	// Device limits a disconnect to one device; empty means all.
	Device string `json:"device,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// AdminSession is one session in an AdminReply.
type AdminSession struct {
	Session string `json:"session"`
	User    string `json:"user"`
	Device  string `json:"device"`
	IP      string `json:"ip,omitempty"`
	// Since is when the session was opened (Unix milliseconds).
	Since int64 `json:"since"`
}

// AdminReply is one edge's answer.
type AdminReply struct {
	Edge     string         `json:"edge"`
	Sessions []AdminSession `json:"sessions"`
	// Closed is how many sessions a disconnect closed.
	Closed int    `json:"closed,omitempty"`
	Error  string `json:"error,omitempty"`
}

// adminSubs answers the admin requests until stop.
type adminSubs struct{ subs []*nats.Subscription }

func (e *Edge) startAdmin(nc *nats.Conn) (*adminSubs, error) {
	a := &adminSubs{}
	for subj, fn := range map[string]func(AdminRequest) AdminReply{
		subjects.AdminSessions:   e.adminSessions,
		subjects.AdminDisconnect: e.adminDisconnect,
	} {
		sub, err := nc.Subscribe(subj, func(m *nats.Msg) {
			var r AdminRequest
			var rep AdminReply
			if err := json.Unmarshal(m.Data, &r); err != nil || subjects.ValidID(r.User) != nil {
				rep = AdminReply{Edge: e.cfg.EdgeID, Error: "want {\"user\":<id>[,\"device\":<id>]}"}
			} else {
				rep = fn(r)
			}
			b, _ := json.Marshal(rep)
			_ = m.Respond(b)
		})
		if err != nil {
			a.stop()
			return nil, fmt.Errorf("edge: subscribe %s: %w", subj, err)
		}
		a.subs = append(a.subs, sub)
	}
	return a, nil
}

func (a *adminSubs) stop() {
	for _, s := range a.subs {
		_ = s.Unsubscribe()
	}
}

// userSessions is user's sessions on this edge (of device, when not empty).
func (e *Edge) userSessions(user, device string) []*session {
	sh := e.hub.shard(user)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var out []*session
	if u := sh.users[user]; u != nil {
		for _, s := range u.sessions {
			if device == "" || s.device == device {
				out = append(out, s)
			}
		}
	}
	return out
}

func (e *Edge) adminSessions(r AdminRequest) AdminReply {
	rep := AdminReply{Edge: e.cfg.EdgeID, Sessions: []AdminSession{}}
	for _, s := range e.userSessions(r.User, r.Device) {
		as := AdminSession{Session: s.id, User: s.user, Device: s.device, Since: s.opened.UnixMilli()}
		if s.ip.IsValid() {
			as.IP = s.ip.String()
		}
		rep.Sessions = append(rep.Sessions, as)
	}
	return rep
}

func (e *Edge) adminDisconnect(r AdminRequest) AdminReply {
	rep := e.adminSessions(r)
	reason := "disconnected by an operator"
	if r.Reason != "" {
		reason += ": " + r.Reason
	}
	if len(reason) > 120 {
		reason = reason[:120]
	}
	for _, s := range e.userSessions(r.User, r.Device) {
		e.log.Info("closing session: admin disconnect", "user", s.user, "device", s.device, "session", s.id)
		s.close(protocol.CloseDisconnected, reason, true, false)
		rep.Closed++
	}
	return rep
}

// frozen answers forbidden when an operator froze conv.
func (e *Edge) frozen(conv string) error {
	if ok, reason := e.revoked.Frozen(conv); ok {
		msg := "conversation " + conv + " is frozen by an operator: no sends or member changes"
		if reason != "" {
			msg += " (" + reason + ")"
		}
		return &protocol.Error{Code: protocol.CodeForbidden, Msg: msg}
	}
	return nil
}
