package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/subjects"
)

// TypeConvDeleted is the type of the last entry of a deleted
// conversation's log (from AuditConv, no body): the hot tier keeps only
// it, so the head (and the next seq) stays known.
const TypeConvDeleted = "conv_deleted"

// ConvDeleteReport is what conv/delete removed.
type ConvDeleteReport struct {
	Conv string `json:"conv"`
	// MembersRemoved is how many members were removed (a group's; a
	// direct conversation keeps its two, frozen).
	MembersRemoved int `json:"members_removed"`
	// LastSeq is the seq of the conv_deleted entry.
	LastSeq uint64 `json:"last_seq"`
	// HotPurged is how many entries were purged from the hot tier.
	HotPurged uint64 `json:"hot_purged"`
	// ArchiveMessages and ArchiveBlocks were deleted from the store.
	ArchiveMessages int64 `json:"archive_messages"`
	ArchiveBlocks   int64 `json:"archive_blocks"`
}

// convDelete freezes conv for good, removes a group's members, appends the
// conv_deleted entry, purges the rest of the hot tier and deletes the
// archive. Retrying is safe.
func (a *api) convDelete(ctx context.Context, r Request, now time.Time) (any, error) {
	if err := subjects.ValidID(r.Conv); err != nil {
		return nil, errInvalid("conv: " + err.Error())
	}
	if a.cfg.Archive == nil {
		return nil, errNoStore
	}
	members, err := a.convs.Members(ctx, r.Conv)
	if errors.Is(err, convapi.ErrNotFound) {
		return nil, fmt.Errorf("%w: conversation %s", errNotFound, r.Conv)
	}
	if err != nil {
		return nil, err
	}
	reason := "deleted by an operator"
	if r.Reason != "" {
		reason += ": " + r.Reason
	}
	// Frozen first: no send or member change gets in meanwhile.
	if _, err := a.w.Freeze(ctx, r.Conv, reason, now); err != nil {
		return nil, err
	}
	rep := ConvDeleteReport{Conv: r.Conv}
	if natter.IsGroupID(r.Conv) && len(members) > 0 {
		for chunk := range slices.Chunk(members, protocol.MaxUsers) {
			if err := a.convs.ServiceRemoveMembers(ctx, AuditConv, r.Conv, chunk); err != nil {
				return nil, fmt.Errorf("admin: conv delete: remove members: %w", err)
			}
		}
		rep.MembersRemoved = len(members)
	}
	l, err := msglog.New(ctx, a.nc, a.js, msglog.Config{Logger: a.log})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	ack, err := l.Append(ctx, msglog.Send{Conv: r.Conv, From: AuditConv, Cmid: "conv-deleted", Type: TypeConvDeleted})
	if err != nil {
		return nil, fmt.Errorf("admin: conv delete: last entry: %w", err)
	}
	rep.LastSeq = ack.Seq
	st, err := a.js.Stream(ctx, subjects.StreamMsgs)
	if err != nil {
		return nil, err
	}
	before, err := st.Info(ctx, jetstream.WithSubjectFilter(subjects.Msg(r.Conv)))
	if err != nil {
		return nil, err
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(subjects.Msg(r.Conv)), jetstream.WithPurgeKeep(1)); err != nil {
		return nil, fmt.Errorf("admin: conv delete: purge hot tier: %w", err)
	}
	if n := before.State.Subjects[subjects.Msg(r.Conv)]; n > 1 {
		rep.HotPurged = n - 1
	}
	if rep.ArchiveMessages, rep.ArchiveBlocks, err = a.cfg.Archive.DeleteConversationMessages(ctx, r.Conv); err != nil {
		return nil, err
	}
	return rep, nil
}
