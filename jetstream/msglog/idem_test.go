package msglog_test

import (
	"context"
	"encoding/json"
	"testing"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
)

// TestEnsureIdemBatch: records the append wrote are left as they are (one
// batched read, no rewrite), a key with no record gets one, and a key whose
// last entry is a delete or purge marker gets a record again.
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
	for i, err := range l.EnsureIdemBatch(ctx, msgs) {
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
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
