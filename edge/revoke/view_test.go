package revoke_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natter-im/natter/edge/revoke"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
)

// TestView: what each kind of entry refuses, that a new View replays the
// bucket, that a watching View sees puts and unbans, and that entries
// lapse with their TTL (the bucket forgets them too).
func TestView(t *testing.T) {
	t.Parallel()
	_, _, js := testenv.StartJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := streams.Ensure(ctx, js, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, subjects.BucketRevoked)
	if err != nil {
		t.Fatal(err)
	}
	w := revoke.NewWriter(js, time.Hour)
	now := time.Now()
	iat := now.Add(-time.Minute)
	mustW := func(_ revoke.Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mustW(w.RevokeToken(ctx, "j/1 ü", time.Time{}, "stolen", now))
	mustW(w.RevokeUser(ctx, "carol", time.Time{}, "", now))
	mustW(w.RevokeDevice(ctx, "bob", "d1", time.Time{}, "", now))
	mustW(w.Ban(ctx, "dave", "spam", time.Time{}, now))

	var changes atomic.Int64
	v, err := revoke.Watch(ctx, kv, nil, func(string) { changes.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer v.Stop()
	for _, tc := range []struct {
		tok  revoke.Token
		want error
	}{
		{revoke.Token{ID: "j/1 ü", User: "alice", IssuedAt: iat}, revoke.ErrRevoked},
		{revoke.Token{ID: "j2", User: "alice", IssuedAt: iat}, nil},
		{revoke.Token{User: "carol", IssuedAt: iat}, revoke.ErrRevoked},
		{revoke.Token{User: "carol"}, revoke.ErrRevoked}, // no iat: older
		{revoke.Token{User: "carol", IssuedAt: now.Add(2 * time.Second)}, nil},
		{revoke.Token{User: "bob", Device: "d1", IssuedAt: iat}, revoke.ErrRevoked},
		{revoke.Token{User: "bob", Device: "d2", IssuedAt: iat}, nil},
		{revoke.Token{User: "dave", IssuedAt: now.Add(time.Hour)}, revoke.ErrBanned},
		{revoke.Token{User: "erin", IssuedAt: iat}, nil},
	} {
		if err := v.Check(tc.tok, time.Now()); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("Check(%+v) = %v, want %v", tc.tok, err, tc.want)
		}
	}
	if changes.Load() != 0 {
		t.Errorf("the replay called changed %d times", changes.Load())
	}

	// Live: an unban and a new ban with a short expiry.
	mustW(w.Unban(ctx, "dave"))
	mustW(w.Ban(ctx, "erin", "", time.Now().Add(2*time.Second), time.Now()))
	testenv.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if err := v.Check(revoke.Token{User: "dave"}, time.Now()); err != nil {
			return fmt.Errorf("dave after unban: %v", err)
		}
		if err := v.Check(revoke.Token{User: "erin"}, time.Now()); !errors.Is(err, revoke.ErrBanned) {
			return fmt.Errorf("erin: %v", err)
		}
		return nil
	})
	if changes.Load() == 0 {
		t.Error("changed was not called for the new ban")
	}
	// The ban lapses; the bucket's TTL removes the key and the view forgets it.
	testenv.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if err := v.Check(revoke.Token{User: "erin"}, time.Now()); err != nil {
			return err
		}
		if _, err := kv.Get(ctx, subjects.BanKey("erin")); err == nil {
			return errors.New("the lapsed ban is still in the bucket")
		}
		return nil
	})
	n := v.Len()
	testenv.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if n = v.Len(); n != 3 {
			return fmt.Errorf("view holds %d entries, want 3 (jti, carol, bob/d1)", n)
		}
		return nil
	})

	// Bad input is ErrInvalid.
	for name, err := range map[string]error{
		"empty jti":    second(w.RevokeToken(ctx, "", time.Time{}, "", now)),
		"bad user":     second(w.RevokeUser(ctx, "a.b", time.Time{}, "", now)),
		"bad device":   second(w.RevokeDevice(ctx, "bob", "*", time.Time{}, "", now)),
		"past ban":     second(w.Ban(ctx, "bob", "", now.Add(-time.Second), now)),
		"unban nobody": second(w.Unban(ctx, "")),
	} {
		if !errors.Is(err, revoke.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func second(_ revoke.Result, err error) error { return err }
