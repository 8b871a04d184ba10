package msglog_test

import (
	"context"
	"encoding/json"
	"maps"
	"testing"

	"github.com/nats-io/nats.go"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
)

// TestEnsureIdemBatch: records the append wrote are left as they are (one
// batched read, nothing published for them), a key with no record gets one,
// and a key whose last entry is a delete or purge marker gets a record again.
func TestEnsureIdemBatch(t *testing.T) {
	t.Parallel()
	s := startServer(t, streams.Config{})
	l, js := newLog(t, s)
	ctx := context.Background()
	acks := appendN(t, l, "c1", 6) // the append writes each record
	kv, err := js.KeyValue(ctx, subjects.BucketIdem)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, acks[1].ID); err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, acks[2].ID); err != nil {
		t.Fatal(err)
	}
	revs := map[string]uint64{}
	for _, a := range acks {
		if e, err := kv.Get(ctx, a.ID); err == nil {
			revs[a.ID] = e.Revision()
		}
	}
	var msgs []natter.Message
	for _, a := range acks {
		msgs = append(msgs, natter.Message{ID: a.ID, Conv: "c1", Seq: a.Seq, TS: a.TS})
	}
	fresh := natter.Message{ID: msglog.MessageID("c1", "u9", "new"), Conv: "c1", Seq: 99, TS: 1}
	msgs = append(msgs, fresh)
	// Every publish on the bucket's subjects, whatever the stream makes of it.
	nc, _ := connect(t, s)
	pubs := make(chan *nats.Msg, 64)
	if _, err := nc.ChanSubscribe("$KV."+subjects.BucketIdem+".>", pubs); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for i, err := range l.EnsureIdemBatch(ctx, msgs) {
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if err := nc.Flush(); err != nil { // what the server routed before is in pubs
		t.Fatal(err)
	}
	published := map[string]bool{}
	for len(pubs) > 0 {
		m := <-pubs
		published[m.Subject[len("$KV."+subjects.BucketIdem+"."):]] = true
	}
	want := map[string]bool{acks[1].ID: true, acks[2].ID: true, fresh.ID: true}
	if !maps.Equal(published, want) {
		t.Fatalf("published on keys %v, want only the ones without a live record %v", published, want)
	}
	for _, m := range msgs {
		e, err := kv.Get(ctx, m.ID)
		if err != nil {
			t.Fatalf("record of %s (seq %d): %v", m.ID, m.Seq, err)
		}
		var ack natter.Ack
		if err := json.Unmarshal(e.Value(), &ack); err != nil || ack.Seq != m.Seq || ack.ID != m.ID {
			t.Fatalf("record of seq %d: %s (%v)", m.Seq, e.Value(), err)
		}
		if rev, ok := revs[m.ID]; ok && rev != e.Revision() {
			t.Fatalf("record of seq %d rewritten: revision %d -> %d", m.Seq, rev, e.Revision())
		}
	}
}
