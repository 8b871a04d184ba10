package revoke_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/natter-im/natter/edge/revoke"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
)

// BenchmarkCheck is what a connect or REST request pays for the
// revocation check: a View of 10,000 entries, a token none of them covers
// (the common case) and one a user revocation covers.
func BenchmarkCheck(b *testing.B) {
	_, _, js := testenv.StartJetStream(b)
	ctx := context.Background()
	if _, err := streams.Ensure(ctx, js, streams.Config{}); err != nil {
		b.Fatal(err)
	}
	w := revoke.NewWriter(js, time.Hour)
	now := time.Now()
	for i := range 10_000 {
		if _, err := w.RevokeUser(ctx, fmt.Sprint("u", i), time.Time{}, "", now); err != nil {
			b.Fatal(err)
		}
	}
	kv, _ := js.KeyValue(ctx, subjects.BucketRevoked)
	v, err := revoke.Watch(ctx, kv, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer v.Stop()
	for _, tc := range []struct {
		name string
		tok  revoke.Token
	}{
		{"not revoked", revoke.Token{ID: "0123456789abcdef01234567", User: "alice", Device: "d1", IssuedAt: now}},
		{"revoked", revoke.Token{ID: "0123456789abcdef01234567", User: "u42", Device: "d1", IssuedAt: now.Add(-time.Minute)}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = v.Check(tc.tok, now)
			}
		})
	}
}
