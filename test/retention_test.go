package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/admin"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/retention"
)

// TestRetentionEndToEnd: an operator gives a group a limit of its own
// (admin API, audited); the persist role's sweeper removes what lies
// beyond it; history's newest page starts at the floor and the page below
// it ends cleanly (empty, more false, the floor named); a member syncing
// from a cursor below the floor gets the kept messages with the floor, so
// it can move on; a messages_expired event names the range.
func TestRetentionEndToEnd(t *testing.T) {
	t.Parallel()
	dev := startNode(t, node.Config{Mode: node.ModeDev, Edge: edgeConfig(), Admin: admin.Config{Token: adminToken},
		Retention: retention.Config{Interval: 50 * time.Millisecond}})
	alice, bob := mustDial(t, dev, "rt-alice"), mustDial(t, dev, "rt-bob")
	conv := alice.createGroup("short memory", "rt-bob")
	for i := range 20 {
		alice.send(conv.ID, fmt.Sprint("r", i), fmt.Sprint("body ", i+1))
	}
	st := dev.Store()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	testenv.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		if n, _ := st.CountMessages(ctx, conv.ID); n != 20 {
			return fmt.Errorf("archived %d", n)
		}
		return nil
	})

	code, m := call(t, dev, admin.PathConvRetention, adminToken, fmt.Sprintf(`{"conv":%q,"messages":5}`, conv.ID))
	if code != http.StatusOK || m["messages"] != float64(5) || m["hold"] != false {
		t.Fatalf("conv retention: %d %v", code, m)
	}
	auditEvent(t, dev, admin.EventConvRetention)
	if code, m := call(t, dev, admin.PathConvRetention, adminToken, `{"conv":"g_nosuch"}`); code != http.StatusNotFound || m["code"] != "not_found" {
		t.Fatalf("conv retention of an unknown conversation: %d %v", code, m)
	}
	if code, m := call(t, dev, admin.PathConvRetention, adminToken, fmt.Sprintf(`{"conv":%q,"days":-5}`, conv.ID)); code != http.StatusBadRequest || m["code"] != "bad_frame" {
		t.Fatalf("conv retention days -5: %d %v", code, m)
	}
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		r, _, err := st.ConvRetention(ctx, conv.ID)
		if err == nil && (r.Floor != 16 || r.Done != 15) {
			err = fmt.Errorf("floor %d, done %d", r.Floor, r.Done)
		}
		return err
	})
	if n, _ := st.CountMessages(ctx, conv.ID); n != 5 {
		t.Fatalf("archive holds %d after the sweep, want 5", n)
	}

	var page protocol.HistoryResult
	alice.request("h1", fmt.Sprintf(`{"op":"history","id":"h1","conv":%q,"limit":50}`, conv.ID), &page)
	if len(page.Msgs) != 5 || page.Msgs[0].Seq != 16 || page.Msgs[4].Seq != 20 || page.Msgs[0].Body != "body 16" {
		t.Fatalf("newest page: %+v", page)
	}
	var below protocol.HistoryResult
	alice.request("h2", fmt.Sprintf(`{"op":"history","id":"h2","conv":%q,"before":16,"limit":50}`, conv.ID), &below)
	if len(below.Msgs) != 0 || below.More || below.Floor != 16 {
		t.Fatalf("page below the floor: %+v", below)
	}
	var after protocol.HistoryResult
	alice.request("h3", fmt.Sprintf(`{"op":"history","id":"h3","conv":%q,"after":3,"limit":50}`, conv.ID), &after)
	if len(after.Msgs) != 5 || after.Msgs[0].Seq != 16 || after.Floor != 16 || after.More {
		t.Fatalf("page after a removed seq: %+v", after)
	}

	var sync protocol.SyncResult
	bob.request("sy", fmt.Sprintf(`{"op":"sync","id":"sy","cursors":{%q:2}}`, conv.ID), &sync)
	var sc *protocol.SyncConv
	for i := range sync.Convs {
		if sync.Convs[i].Conv == conv.ID {
			sc = &sync.Convs[i]
		}
	}
	if sc == nil || sc.Floor != 16 || len(sc.Msgs) != 5 || sc.Msgs[0].Seq != 16 || sc.Head != 20 {
		t.Fatalf("sync from below the floor: %+v", sc)
	}

	// The Go SDK, resuming from a cursor below the floor, delivers the kept
	// messages in order instead of waiting for the removed ones.
	c := sdk(t, "rt-bob", client.Config{URLs: []string{wsURL(dev)}, Cursors: map[string]uint64{conv.ID: 2}})
	deadline := time.After(20 * time.Second)
	for want := uint64(16); want <= 20; {
		select {
		case msg := <-c.Messages():
			if msg.Conv != conv.ID {
				continue
			}
			if msg.Seq != want {
				t.Fatalf("SDK delivered seq %d, want %d", msg.Seq, want)
			}
			want++
		case <-deadline:
			t.Fatalf("SDK: seq %d not delivered (stuck below the floor?)", want)
		}
	}

	js := testenv.JetStream(t, testenv.Connect(t, dev.NATSURL()))
	s, err := js.Stream(ctx, subjects.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetLastMsgForSubject(ctx, subjects.Event(natter.EventMessagesExpired, conv.ID))
	if err != nil {
		t.Fatalf("messages_expired event: %v", err)
	}
	var ev natter.Event
	var d natter.EventExpired
	if err := json.Unmarshal(raw.Data, &ev); err != nil || json.Unmarshal(ev.Data, &d) != nil || d.From != 1 || d.To != 15 || d.Floor != 16 || d.Reason != "messages" {
		t.Fatalf("messages_expired event: %s", raw.Data)
	}
}
