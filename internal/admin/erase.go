package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/pushreg"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/retention"
	"github.com/natter-im/natter/workers/store"
)

// Archive is what erase needs of the store of record: the process's
// *store.Store (natter dev and worker).
type Archive interface {
	EraseUserMessages(ctx context.Context, conv, user string) (store.Erased, error)
	DeleteConversationMessages(ctx context.Context, conv string) (msgs, blocks int64, err error)
	// The retention state (conv/retention).
	retention.PolicyStore
	ConvRetention(ctx context.Context, conv string) (store.ConvRetention, bool, error)
}

// Eraser removes one kind of a user's data for erase (settings, push
// tokens, attachments, ... as they are built): Name names it in the
// report, Erase returns how many items it removed.
type Eraser interface {
	Name() string
	Erase(ctx context.Context, user string) (int, error)
}

// PendingErasers are the kinds of per-user data an erase should remove
// once they exist in this build; until an Eraser of that name is in
// Config.Erasers, the report lists them as "not in this build". None
// today: settings, push registrations and attachments are erased.
var PendingErasers []string

// EraseReport is what erase removed.
type EraseReport struct {
	User string `json:"user"`
	// Conversations is how many of the user's conversations were searched.
	Conversations int `json:"conversations"`
	// Tombstoned is how many delete entries were appended (one per
	// message of the user found in the hot tier or the archive).
	Tombstoned int `json:"tombstoned"`
	// ArchiveBlanked is how many archived messages lost their body;
	// ArchiveBlocks how many archive blocks were rewritten without them.
	ArchiveBlanked int `json:"archive_blanked"`
	ArchiveBlocks  int `json:"archive_blocks"`
	// ReadCursors is how many read cursors were deleted from the store;
	// CursorKeys how many keys of the CURSORS bucket were purged.
	ReadCursors int `json:"read_cursors"`
	CursorKeys  int `json:"cursor_keys"`
	// SettingsKeys is how many of the user's conversation settings
	// (SETTINGS keys <user>.<conv>) were purged; PresenceKeys how many of
	// their PRESENCE keys (last seen, hidden, the users they block).
	SettingsKeys int `json:"settings_keys"`
	PresenceKeys int `json:"presence_keys"`
	// SessionsClosed is how many sessions were closed (close 4005).
	SessionsClosed int `json:"sessions_closed"`
	// Other is what each Eraser removed, by name, or "not in this build".
	Other map[string]any `json:"other"`
}

// erasePage is how many hot-tier entries one read of erase takes.
const erasePage = 500

func (a *api) erase(ctx context.Context, r Request, _ time.Time) (any, error) {
	if err := subjects.ValidID(r.User); err != nil {
		return nil, errInvalid("user: " + err.Error())
	}
	if a.cfg.Archive == nil {
		return nil, errNoStore
	}
	rep := EraseReport{User: r.User, Other: map[string]any{}}
	// First the sessions, so that nothing new is sent while erasing (a
	// client that reconnects can; ban the user first to stop that).
	if d, err := a.gather(ctx, subjects.AdminDisconnect, Request{User: r.User, Reason: "account erased"}); err == nil {
		rep.SessionsClosed = d.Closed
	}
	var convs []string
	if err := a.convs.ListPages(ctx, r.User, func(page []natter.Conversation) error {
		for _, c := range page {
			convs = append(convs, c.ID)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	rep.Conversations = len(convs)
	l, err := msglog.New(ctx, a.nc, a.js, msglog.Config{Logger: a.log})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	for _, conv := range convs {
		er, err := a.cfg.Archive.EraseUserMessages(ctx, conv, r.User)
		if err != nil {
			return nil, err
		}
		rep.ArchiveBlanked += len(er.Msgs)
		rep.ArchiveBlocks += er.Blocks
		rep.ReadCursors += er.Cursors
		ids := map[string]bool{}
		var order []string
		for _, m := range er.Msgs {
			if !ids[m.ID] {
				ids[m.ID] = true
				order = append(order, m.ID)
			}
		}
		hot, err := userEntries(ctx, l, conv, r.User)
		if err != nil {
			return nil, err
		}
		for _, id := range hot {
			if !ids[id] {
				ids[id] = true
				order = append(order, id)
			}
		}
		for _, id := range order {
			if _, err := l.Append(ctx, msglog.Send{Conv: conv, From: AuditConv, Cmid: "erase-" + id, Type: natter.TypeDelete, Ref: id}); err != nil {
				return nil, fmt.Errorf("admin: erase: tombstone %s: %w", id, err)
			}
			rep.Tombstoned++
		}
	}
	if rep.CursorKeys, err = a.purgeKeys(ctx, subjects.BucketCursors, r.User+".>"); err != nil {
		return nil, err
	}
	if rep.SettingsKeys, err = a.purgeKeys(ctx, subjects.BucketSettings, r.User+".>"); err != nil {
		return nil, err
	}
	for _, k := range []string{subjects.PresenceSeenKey(r.User), subjects.PresenceHiddenKey(r.User), subjects.PresenceBlockKey(r.User)} {
		n, err := a.purgeKeys(ctx, subjects.BucketPresence, k)
		if err != nil {
			return nil, err
		}
		rep.PresenceKeys += n
	}
	regs, err := pushreg.Open(ctx, a.nc, a.js)
	if err == nil {
		err = regs.DeleteUser(ctx, r.User)
	}
	if err != nil {
		return nil, fmt.Errorf("admin: erase: push registrations: %w", err)
	}
	rep.Other["push_tokens"] = "removed"
	done := map[string]bool{}
	for _, e := range a.cfg.Erasers {
		n, err := e.Erase(ctx, r.User)
		if err != nil {
			return nil, fmt.Errorf("admin: erase %s: %w", e.Name(), err)
		}
		rep.Other[e.Name()], done[e.Name()] = n, true
	}
	// The attachgc role deletes the attachments of deleted messages (their
	// message_deleted events), so the tombstones take the user's sent
	// attachments with them; uploads no message carries expire.
	if _, ok := rep.Other["attachments"]; !ok {
		rep.Other["attachments"] = "deleted with the tombstoned messages by the attachgc role"
	}
	for _, name := range PendingErasers {
		if !done[name] {
			rep.Other[name] = "not in this build"
		}
	}
	return rep, nil
}

// userEntries returns the ids of user's messages in conv's hot tier (not
// edit or delete entries).
func userEntries(ctx context.Context, l *msglog.Log, conv, user string) ([]string, error) {
	var ids []string
	var after uint64
	for {
		msgs, head, err := l.After(ctx, conv, after, erasePage)
		var te *msglog.TrimmedError
		if errors.As(err, &te) {
			if te.Oldest <= after+1 {
				return ids, nil // nothing more to read
			}
			after = te.Oldest - 1
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("admin: erase: read %s: %w", conv, err)
		}
		for _, m := range msgs {
			if m.From == user && !m.IsEdit() && !m.IsDelete() {
				ids = append(ids, m.ID)
			}
			after = m.Seq
		}
		if len(msgs) == 0 || after >= head {
			return ids, nil
		}
	}
}

// purgeKeys purges the keys of bucket matching filter (a key, or a
// wildcard filter) and returns how many there were.
func (a *api) purgeKeys(ctx context.Context, bucket, filter string) (int, error) {
	kv, err := a.js.KeyValue(ctx, bucket)
	if err != nil {
		return 0, fmt.Errorf("admin: erase: %s: %w", bucket, err)
	}
	keys, err := kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return 0, fmt.Errorf("admin: erase: %s: %w", bucket, err)
	}
	var list []string
	for k := range keys.Keys() {
		list = append(list, k)
	}
	for _, k := range list {
		if err := kv.Purge(ctx, k); err != nil {
			return 0, fmt.Errorf("admin: erase: purge %s %s: %w", bucket, k, err)
		}
	}
	return len(list), nil
}
