package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/retention"
	"github.com/natter-im/natter/workers/store"
)

// RetentionReply is a conversation's retention state (conv/retention).
type RetentionReply struct {
	Conv string `json:"conv"`
	// Days and Messages are the conversation's own limits (0 = keep
	// forever); absent: its class's (--retention-*).
	Days     *int `json:"days,omitempty"`
	Messages *int `json:"messages,omitempty"`
	// Hold is the legal hold: nothing is removed while it is set.
	Hold bool `json:"hold"`
	// Floor is the oldest seq kept (0: nothing removed yet).
	Floor uint64 `json:"floor"`
}

// convRetention sets a conversation's own retention limits and legal hold
// (the fields given) and answers its state; with none it only reads it.
func (a *api) convRetention(ctx context.Context, r Request, now time.Time) (any, error) {
	if err := subjects.ValidID(r.Conv); err != nil {
		return nil, errInvalid("conv: " + err.Error())
	}
	for name, v := range map[string]*int{"days": r.Days, "messages": r.Messages} {
		if v != nil && *v < -1 {
			return nil, errInvalid(fmt.Sprintf("%s: %d: want -1 (the class's), 0 (keep forever) or a positive limit", name, *v))
		}
	}
	if a.cfg.Archive == nil {
		return nil, errNoStore
	}
	if _, err := a.convs.Members(ctx, r.Conv); err != nil {
		if errors.Is(err, convapi.ErrNotFound) {
			return nil, fmt.Errorf("%w: conversation %s", errNotFound, r.Conv)
		}
		return nil, err
	}
	var st store.ConvRetention
	var err error
	if r.Days == nil && r.Messages == nil && r.Hold == nil {
		st, _, err = a.cfg.Archive.ConvRetention(ctx, r.Conv)
	} else {
		st, err = retention.Change(ctx, a.cfg.Archive, r.Conv, store.RetentionPolicy{Days: r.Days, Messages: r.Messages, Hold: r.Hold}, now)
	}
	if err != nil {
		return nil, err
	}
	out := RetentionReply{Conv: r.Conv, Hold: st.Hold, Floor: st.Floor}
	if st.DaysSet {
		out.Days = &st.Days
	}
	if st.MessagesSet {
		out.Messages = &st.Messages
	}
	return out, nil
}
