package convsvc_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/delivery"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/convsvc"
)

// readSignals subscribes to user's delivery subject and returns a func
// that reads the read signals of conv it got, until one with seq last.
func readSignals(t *testing.T, e *env, user string) func(conv string, last uint64) []delivery.Read {
	t.Helper()
	sub, err := e.nc.SubscribeSync(subjects.Deliver(user))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return func(conv string, last uint64) []delivery.Read {
		t.Helper()
		var out []delivery.Read
		for {
			m, err := sub.NextMsg(10 * time.Second)
			if err != nil {
				t.Fatalf("%s: waiting for the read of %s at %d: %v (got %+v)", user, conv, last, err, out)
			}
			if m.Header.Get(delivery.SignalHeader) != delivery.SignalRead {
				continue
			}
			r, err := delivery.ParseRead(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			if r.Conv != conv {
				continue
			}
			out = append(out, r)
			if r.Seq == last {
				return out
			}
		}
	}
}

// TestReadSignalsOnlyWhenMoved: without coalescing, every read that moves
// the cursor publishes one signal to each member of a direct conversation,
// and a read of the same or a lower seq publishes none. In a group above
// MaxReceiptMembers only the reader gets it.
func TestReadSignalsOnlyWhenMoved(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{svc: convsvc.Config{ReadPushInterval: -1}})
	u := names("alice", "bob", "carol")
	alice, bob := u[0], u[1]
	d, err := e.cl.Create(ctxT(t), convapi.CreateRequest{User: alice, Kind: natter.KindDirect, With: bob})
	if err != nil {
		t.Fatal(err)
	}
	var many []string
	for i := range convapi.MaxReceiptMembers {
		many = append(many, fmt.Sprintf("%s-%d", u[2], i)) // with alice: one more than the threshold
	}
	big, err := e.cl.Create(ctxT(t), convapi.CreateRequest{User: alice, Kind: natter.KindGroup, Members: many})
	if err != nil {
		t.Fatal(err)
	}
	if big.MemberCount != convapi.MaxReceiptMembers+1 {
		t.Fatalf("big group: %d members", big.MemberCount)
	}
	ofAlice, ofBob, ofMember := readSignals(t, e, alice), readSignals(t, e, bob), readSignals(t, e, many[0])

	for _, seq := range []uint64{2, 2, 1, 3, 3, 5} {
		if err := e.cl.SetRead(ctxT(t), alice, d.ID, seq); err != nil {
			t.Fatal(err)
		}
	}
	want := []delivery.Read{{Conv: d.ID, User: alice, Seq: 2}, {Conv: d.ID, User: alice, Seq: 3}, {Conv: d.ID, User: alice, Seq: 5}}
	for who, next := range map[string]func(string, uint64) []delivery.Read{"alice": ofAlice, "bob": ofBob} {
		if got := next(d.ID, 5); !slices.Equal(got, want) {
			t.Errorf("%s got %+v, want one signal per forward move %+v", who, got, want)
		}
	}

	// Above the threshold: the reader's own devices only. The direct
	// conversation's read after it is published after it.
	if err := e.cl.SetRead(ctxT(t), alice, big.ID, 4); err != nil {
		t.Fatal(err)
	}
	if got := ofAlice(big.ID, 4); len(got) != 1 {
		t.Fatalf("alice, big group: %+v", got)
	}
	if err := e.cl.SetRead(ctxT(t), many[0], d.ID, 1); err == nil {
		t.Fatal("a non-member's read was accepted")
	}
	if err := e.cl.SetRead(ctxT(t), alice, big.ID, 9); err != nil {
		t.Fatal(err)
	}
	if err := e.cl.SetRead(ctxT(t), many[0], big.ID, 9); err != nil {
		t.Fatal(err)
	}
	// many[0]'s first signal of the group is its own read, not alice's.
	if got := ofMember(big.ID, 9); len(got) != 1 || got[0].User != many[0] {
		t.Fatalf("member of the big group got %+v, want only its own read", got)
	}
}

// TestReadSignalsCoalesced: reads of one user in one conversation within
// the interval after a push are held, and only the highest is pushed when
// it ends.
func TestReadSignalsCoalesced(t *testing.T) {
	t.Parallel()
	const every = time.Second
	e := newEnv(t, envConfig{svc: convsvc.Config{ReadPushInterval: every}})
	u := names("alice", "bob")
	d, err := e.cl.Create(ctxT(t), convapi.CreateRequest{User: u[0], Kind: natter.KindDirect, With: u[1]})
	if err != nil {
		t.Fatal(err)
	}
	ofBob := readSignals(t, e, u[1])
	start := time.Now()
	for seq := uint64(1); seq <= 5; seq++ {
		if err := e.cl.SetRead(ctxT(t), u[0], d.ID, seq); err != nil {
			t.Fatal(err)
		}
	}
	quick := time.Since(start) < every
	got := ofBob(d.ID, 5)
	if got[0].Seq != 1 || len(got) >= 5 || (quick && len(got) != 2) {
		t.Fatalf("5 reads in %v pushed %+v; want the first at once and the last after the interval", time.Since(start), got)
	}
}
