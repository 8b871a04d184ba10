package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/edge"
	"github.com/natter-im/natter/edge/revoke"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/subjects"
)

var (
	// errNotFound: the conversation (or user) asked about does not exist.
	errNotFound = errors.New("admin: not found")
	// errNoStore: erase was called on a process without the store.
	errNoStore = errors.New("admin: erase needs the store of record: call the admin API of natter dev or a worker (--admin)")
)

// EdgesReply is the answer of sessions and disconnect: every session of the
// user on the edges that answered within Config.Gather.
type EdgesReply struct {
	User     string              `json:"user"`
	Device   string              `json:"device,omitempty"`
	Sessions []edge.AdminSession `json:"sessions"`
	// Devices are the devices of the sessions, sorted, once each.
	Devices []string `json:"devices"`
	// Closed is how many sessions a disconnect closed.
	Closed int `json:"closed"`
	// Edges is how many edges answered.
	Edges int `json:"edges"`
}

func (a *api) sessions(ctx context.Context, r Request, _ time.Time) (any, error) {
	return a.gather(ctx, subjects.AdminSessions, r)
}

func (a *api) disconnect(ctx context.Context, r Request, _ time.Time) (any, error) {
	return a.gather(ctx, subjects.AdminDisconnect, r)
}

// gather asks every edge and collects the answers until none has come for
// a fifth of Gather, or Gather has passed.
func (a *api) gather(ctx context.Context, subj string, r Request) (EdgesReply, error) {
	if err := subjects.ValidID(r.User); err != nil {
		return EdgesReply{}, errInvalid("user: " + err.Error())
	}
	if r.Device != "" {
		if err := subjects.ValidID(r.Device); err != nil {
			return EdgesReply{}, errInvalid("device: " + err.Error())
		}
	}
	body, _ := json.Marshal(edge.AdminRequest{User: r.User, Device: r.Device, Reason: r.Reason})
	inbox := a.nc.NewRespInbox()
	sub, err := a.nc.SubscribeSync(inbox)
	if err != nil {
		return EdgesReply{}, fmt.Errorf("admin: %s: %w", subj, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := a.nc.PublishRequest(subj, inbox, body); err != nil {
		return EdgesReply{}, fmt.Errorf("admin: %s: %w", subj, err)
	}
	out := EdgesReply{User: r.User, Device: r.Device, Sessions: []edge.AdminSession{}, Devices: []string{}}
	end := time.Now().Add(a.cfg.Gather)
	quiet := a.cfg.Gather / 5
	seen := map[string]bool{}
	for {
		wait := min(quiet, time.Until(end))
		if wait <= 0 {
			break
		}
		m, err := sub.NextMsg(wait)
		if errors.Is(err, nats.ErrTimeout) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("admin: %s: %w", subj, err)
		}
		var rep edge.AdminReply
		if json.Unmarshal(m.Data, &rep) != nil || rep.Error != "" {
			a.log.Warn("admin: bad edge answer", "subject", subj, "answer", string(m.Data))
			continue
		}
		out.Edges++
		out.Closed += rep.Closed
		out.Sessions = append(out.Sessions, rep.Sessions...)
		for _, s := range rep.Sessions {
			if !seen[s.Device] {
				seen[s.Device] = true
				out.Devices = append(out.Devices, s.Device)
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	slices.Sort(out.Devices)
	return out, nil
}

// ConvReply is the answer of conv/inspect.
type ConvReply struct {
	Conv        string   `json:"conv"`
	Kind        string   `json:"kind,omitempty"`
	Name        string   `json:"name,omitempty"`
	CreatedBy   string   `json:"created_by,omitempty"`
	CreatedAt   int64    `json:"created_at,omitempty"`
	Members     []string `json:"members"`
	MemberCount int      `json:"member_count"`
	// LastSeq is the newest seq of the conversation's log: how many
	// entries (messages, edits, deletes) it has had.
	LastSeq uint64 `json:"last_seq"`
	Frozen  bool   `json:"frozen"`
	// FrozenReason is the freeze's reason.
	FrozenReason string `json:"frozen_reason,omitempty"`
}

func (a *api) convInspect(ctx context.Context, r Request, _ time.Time) (any, error) {
	if err := subjects.ValidID(r.Conv); err != nil {
		return nil, errInvalid("conv: " + err.Error())
	}
	members, err := a.convs.Members(ctx, r.Conv)
	if err != nil {
		if errors.Is(err, convapi.ErrNotFound) {
			return nil, fmt.Errorf("%w: conversation %s", errNotFound, r.Conv)
		}
		return nil, err
	}
	out := ConvReply{Conv: r.Conv, Members: members, MemberCount: len(members)}
	if len(members) > 0 {
		if c, err := a.convs.Get(ctx, members[0], r.Conv); err == nil {
			out.Kind, out.Name, out.CreatedBy, out.CreatedAt = c.Kind, c.Name, c.CreatedBy, c.CreatedAt
		}
	}
	if out.LastSeq, err = a.head(ctx, r.Conv); err != nil {
		return nil, err
	}
	kv, err := a.js.KeyValue(ctx, subjects.BucketRevoked)
	if err != nil {
		return nil, err
	}
	switch e, err := kv.Get(ctx, subjects.FrozenKey(r.Conv)); {
	case err == nil:
		var en revoke.Entry
		_ = json.Unmarshal(e.Value(), &en)
		out.Frozen, out.FrozenReason = true, en.Reason
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, err
	}
	return out, nil
}

// head is the newest seq of conv's log.
func (a *api) head(ctx context.Context, conv string) (uint64, error) {
	l, err := msglog.New(ctx, a.nc, a.js, msglog.Config{Logger: a.log})
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Head(ctx, conv)
}

func (a *api) convFreeze(ctx context.Context, r Request, now time.Time) (revoke.Result, error) {
	return a.w.Freeze(ctx, r.Conv, r.Reason, now)
}

func (a *api) convUnfreeze(ctx context.Context, r Request, _ time.Time) (revoke.Result, error) {
	return a.w.Unfreeze(ctx, r.Conv)
}
