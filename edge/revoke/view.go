package revoke

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/subjects"
)

// Token is what a check needs of a verified token.
type Token struct {
	// ID is the "jti" claim; "" when the token has none (then no jti
	// revocation can match it).
	ID string
	// User is the "sub" claim.
	User string
	// Device is the session's device: the token's "dev" claim, or the
	// device the client named when the token has none.
	Device string
	// IssuedAt is the "iat" claim; zero when the token has none (then every
	// revocation of its user or device covers it).
	IssuedAt time.Time
}

// View is an edge's in-memory copy of the REVOKED bucket, kept current by
// a watcher. Check costs a map lookup under a read lock. It is safe for
// concurrent use.
type View struct {
	log     *slog.Logger
	changed func(key string)

	mu      sync.RWMutex
	entries map[string]Entry // by REVOKED key

	cancel context.CancelFunc
	done   chan struct{}
}

// Watch replays the bucket into a new View and keeps it current until
// Stop. It returns once the replay is done (bounded by ctx), so a
// restarted edge enforces every revocation from its first connection.
// changed, when not nil, is called (from the watcher's goroutine) with the
// key of every entry added or replaced after the replay.
func Watch(ctx context.Context, kv jetstream.KeyValue, log *slog.Logger, changed func(key string)) (*View, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	wctx, cancel := context.WithCancel(context.Background())
	w, err := kv.WatchAll(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("revoke: watch: %w", err)
	}
	v := &View{log: log, changed: changed, entries: map[string]Entry{}, cancel: cancel, done: make(chan struct{})}
	// The replay ends with a nil entry.
	for replayed := false; !replayed; {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				cancel()
				return nil, fmt.Errorf("revoke: watch: %w", jetstream.ErrConsumerDeleted)
			}
			if e == nil {
				replayed = true
				break
			}
			v.apply(e)
		case <-ctx.Done():
			_ = w.Stop()
			cancel()
			return nil, fmt.Errorf("revoke: replay: %w", ctx.Err())
		}
	}
	go v.run(wctx, w)
	return v, nil
}

func (v *View) run(ctx context.Context, w jetstream.KeyWatcher) {
	defer close(v.done)
	defer func() { _ = w.Stop() }()
	for e := range w.Updates() {
		if e == nil {
			continue
		}
		if v.apply(e) && v.changed != nil {
			v.changed(e.Key())
		}
	}
	if ctx.Err() == nil {
		// The ordered consumer survives reconnects and leader changes; it
		// ends only when the bucket is gone. The view keeps what it has.
		v.log.Error("revoke: the REVOKED watcher stopped: new revocations and bans are not seen until restart")
	}
}

// apply records e; true when it added or replaced an entry (not a delete).
func (v *View) apply(e jetstream.KeyValueEntry) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(v.entries, e.Key())
		return false
	}
	var en Entry
	if err := json.Unmarshal(e.Value(), &en); err != nil {
		// Refusing more than asked beats ignoring a revocation: an
		// unreadable entry revokes what its key names, for good.
		v.log.Error("revoke: unreadable entry, applied without expiry", "key", e.Key(), "err", err)
		en = Entry{Before: 1 << 62}
	}
	v.entries[e.Key()] = en
	return true
}

// Stop ends the watcher. Safe to call twice, and on a nil View.
func (v *View) Stop() {
	if v == nil {
		return
	}
	v.cancel()
	<-v.done
}

// Len is how many entries the view holds (lapsed ones included until their
// markers arrive).
func (v *View) Len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.entries)
}

// Check returns nil when t may be used at now, else an error wrapping
// [ErrBanned] or [ErrRevoked] whose message names the reason. A nil View
// holds nothing.
func (v *View) Check(t Token, now time.Time) error {
	if v == nil {
		return nil
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if len(v.entries) == 0 {
		return nil
	}
	if e, ok := v.entries[subjects.BanKey(t.User)]; ok && !e.lapsed(now) {
		msg := "user " + t.User + " is banned"
		if e.Until != 0 {
			msg += " until " + time.UnixMilli(e.Until).UTC().Format(time.RFC3339)
		}
		if e.Reason != "" {
			msg += ": " + e.Reason
		}
		return fmt.Errorf("%w: %s", ErrBanned, msg)
	}
	if t.ID != "" {
		if e, ok := v.entries[subjects.RevokedJTIKey(t.ID)]; ok && !e.lapsed(now) {
			return fmt.Errorf("%w: token %s is revoked%s", ErrRevoked, quote(t.ID), reason(e))
		}
	}
	issued := t.IssuedAt.Unix()
	if t.IssuedAt.IsZero() {
		issued = -1 << 62
	}
	if e, ok := v.entries[subjects.RevokedUserKey(t.User)]; ok && !e.lapsed(now) && issued < e.Before {
		return fmt.Errorf("%w: tokens of user %s issued before %s are revoked%s", ErrRevoked, t.User, time.Unix(e.Before, 0).UTC().Format(time.RFC3339), reason(e))
	}
	if t.Device != "" && subjects.ValidID(t.Device) == nil {
		if e, ok := v.entries[subjects.RevokedDeviceKey(t.User, t.Device)]; ok && !e.lapsed(now) && issued < e.Before {
			return fmt.Errorf("%w: tokens of user %s on device %s issued before %s are revoked%s", ErrRevoked, t.User, t.Device, time.Unix(e.Before, 0).UTC().Format(time.RFC3339), reason(e))
		}
	}
	return nil
}

// Frozen reports whether an operator froze conv, and the reason given. A
// nil View holds nothing.
func (v *View) Frozen(conv string) (bool, string) {
	if v == nil {
		return false, ""
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if len(v.entries) == 0 {
		return false, ""
	}
	e, ok := v.entries[subjects.FrozenKey(conv)]
	return ok, e.Reason
}

func reason(e Entry) string {
	if e.Reason == "" {
		return ""
	}
	return ": " + e.Reason
}

// quote cuts a client-supplied id for an error message.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return fmt.Sprintf("%q", s)
}
