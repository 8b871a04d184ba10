package convsvc_test

import (
	"testing"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/convapi"
)

// BenchmarkMemberCacheHit is the edge's membership check of a send when the
// conversation's members are cached (every send but the first): 0 allocs.
func BenchmarkMemberCacheHit(b *testing.B) {
	e := newEnv(b, envConfig{})
	u := names("alice", "bob")
	c, err := e.cl.Create(ctxT(b), convapi.CreateRequest{User: u[0], Kind: natter.KindGroup, Name: "g", Members: u[1:]})
	if err != nil {
		b.Fatal(err)
	}
	nc := e.connect(b)
	m, err := convapi.NewMemberCache(ctxT(b), nc, convapi.NewClient(nc, 0), 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	ctx := ctxT(b)
	if ok, err := m.IsMember(ctx, c.ID, u[1]); err != nil || !ok {
		b.Fatalf("IsMember: %v %v", ok, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := m.IsMember(ctx, c.ID, u[1]); err != nil || !ok {
			b.Fatalf("IsMember: %v %v", ok, err)
		}
	}
}
