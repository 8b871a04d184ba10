package revoke

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/subjects"
)

// DefaultTokenLifetime is the default of [Writer]'s token lifetime: how long
// after its issue a token can be valid at most (auth.DefaultTTL, the
// lifetime natter token mints).
const DefaultTokenLifetime = 24 * time.Hour

// Writer writes revocations and bans to the REVOKED bucket.
type Writer struct {
	js       jetstream.JetStream
	lifetime time.Duration
}

// NewWriter returns a Writer on js. lifetime is the longest lifetime of a
// token (exp - iat) the identity provider issues; zero means
// DefaultTokenLifetime. A revocation by user or device lapses lifetime after
// its Before: by then every token it covers has expired.
func NewWriter(js jetstream.JetStream, lifetime time.Duration) *Writer {
	if lifetime <= 0 {
		lifetime = DefaultTokenLifetime
	}
	return &Writer{js: js, lifetime: lifetime}
}

// Result is what a write stored.
type Result struct {
	Key   string `json:"key"`
	Entry Entry  `json:"entry"`
}

// RevokeToken revokes the token with id jti. exp is the token's expiry;
// zero means now + the token lifetime.
func (w *Writer) RevokeToken(ctx context.Context, jti string, exp time.Time, reason string, now time.Time) (Result, error) {
	if jti == "" || len(jti) > 256 {
		return Result{}, fmt.Errorf("%w: jti must be 1..256 bytes", ErrInvalid)
	}
	if exp.IsZero() {
		exp = now.Add(w.lifetime)
	}
	return w.put(ctx, subjects.RevokedJTIKey(jti), Entry{Until: exp.UnixMilli(), Reason: reason}, now)
}

// RevokeUser revokes every token of user issued before before; zero means
// now, rounded up to the next second (iat has whole seconds: a token issued
// in the same second is revoked too).
func (w *Writer) RevokeUser(ctx context.Context, user string, before time.Time, reason string, now time.Time) (Result, error) {
	if err := subjects.ValidID(user); err != nil {
		return Result{}, fmt.Errorf("%w: user: %w", ErrInvalid, err)
	}
	b := beforeOf(before, now)
	return w.put(ctx, subjects.RevokedUserKey(user), Entry{Before: b, Until: time.Unix(b, 0).Add(w.lifetime).UnixMilli(), Reason: reason}, now)
}

// RevokeDevice revokes every token of user on device issued before before
// (zero: as RevokeUser).
func (w *Writer) RevokeDevice(ctx context.Context, user, device string, before time.Time, reason string, now time.Time) (Result, error) {
	if err := subjects.ValidID(user); err != nil {
		return Result{}, fmt.Errorf("%w: user: %w", ErrInvalid, err)
	}
	if err := subjects.ValidID(device); err != nil {
		return Result{}, fmt.Errorf("%w: device: %w", ErrInvalid, err)
	}
	b := beforeOf(before, now)
	return w.put(ctx, subjects.RevokedDeviceKey(user, device), Entry{Before: b, Until: time.Unix(b, 0).Add(w.lifetime).UnixMilli(), Reason: reason}, now)
}

// Ban bans user until until (zero: until Unban).
func (w *Writer) Ban(ctx context.Context, user, reason string, until, now time.Time) (Result, error) {
	if err := subjects.ValidID(user); err != nil {
		return Result{}, fmt.Errorf("%w: user: %w", ErrInvalid, err)
	}
	if !until.IsZero() && !until.After(now) {
		return Result{}, fmt.Errorf("%w: until %s is not in the future", ErrInvalid, until.UTC().Format(time.RFC3339))
	}
	e := Entry{Reason: reason}
	if !until.IsZero() {
		e.Until = until.UnixMilli()
	}
	return w.put(ctx, subjects.BanKey(user), e, now)
}

// Freeze freezes conv (no sends, no member changes) until Unfreeze.
func (w *Writer) Freeze(ctx context.Context, conv, reason string, now time.Time) (Result, error) {
	if err := subjects.ValidID(conv); err != nil {
		return Result{}, fmt.Errorf("%w: conv: %w", ErrInvalid, err)
	}
	return w.put(ctx, subjects.FrozenKey(conv), Entry{Reason: reason}, now)
}

// Unfreeze lifts conv's freeze (none is fine).
func (w *Writer) Unfreeze(ctx context.Context, conv string) (Result, error) {
	if err := subjects.ValidID(conv); err != nil {
		return Result{}, fmt.Errorf("%w: conv: %w", ErrInvalid, err)
	}
	return w.purge(ctx, subjects.FrozenKey(conv))
}

// Unban lifts user's ban (none is fine).
func (w *Writer) Unban(ctx context.Context, user string) (Result, error) {
	if err := subjects.ValidID(user); err != nil {
		return Result{}, fmt.Errorf("%w: user: %w", ErrInvalid, err)
	}
	return w.purge(ctx, subjects.BanKey(user))
}

// purge removes key.
func (w *Writer) purge(ctx context.Context, key string) (Result, error) {
	m := nats.NewMsg(subjects.KVSubject(subjects.BucketRevoked, key))
	m.Header.Set("KV-Operation", "PURGE")
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	// The purge marker itself lapses (a lone marker per unbanned user or
	// unfrozen conversation would otherwise stay for good).
	m.Header.Set(jetstream.MsgTTLHeader, time.Minute.String())
	if _, err := w.js.PublishMsg(ctx, m); err != nil {
		return Result{}, fmt.Errorf("revoke: purge %s: %w", key, err)
	}
	return Result{Key: key}, nil
}

// put stores e under key with a TTL that ends at e.Until (none when zero).
func (w *Writer) put(ctx context.Context, key string, e Entry, now time.Time) (Result, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return Result{}, fmt.Errorf("revoke: encode: %w", err)
	}
	m := nats.NewMsg(subjects.KVSubject(subjects.BucketRevoked, key))
	m.Data = data
	if e.Until != 0 {
		// Nats-TTL has whole seconds, at least one.
		ttl := max(time.UnixMilli(e.Until).Sub(now).Round(time.Second)+time.Second, time.Second)
		m.Header.Set(jetstream.MsgTTLHeader, ttl.String())
	}
	if _, err := w.js.PublishMsg(ctx, m); err != nil {
		return Result{}, fmt.Errorf("revoke: put %s: %w", key, err)
	}
	return Result{Key: key, Entry: e}, nil
}

func beforeOf(before, now time.Time) int64 {
	if !before.IsZero() {
		return before.Unix()
	}
	return now.Truncate(time.Second).Unix() + 1
}
