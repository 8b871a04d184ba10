package test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/backup"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testenv"
)

// backupClients opens a deployment's JetStream and MongoDB database for
// backup.Run / backup.Restore.
func backupClients(t *testing.T, natsURL, mongoURI string) (jetstream.JetStream, *mongo.Database) {
	t.Helper()
	nc := testenv.Connect(t, natsURL)
	client, err := mongo.Connect(context.Background(), options.Client().ApplyURI(mongoURI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return testenv.JetStream(t, nc), client.Database("natter")
}

// deviceSync syncs user's device with cursors and returns the reply.
func deviceSync(t *testing.T, n *node.Node, user, device string, cursors map[string]uint64) protocol.SyncResult {
	t.Helper()
	c := mustDialDevice(t, n, user, device)
	defer c.conn.Close()
	b, _ := json.Marshal(cursors)
	c.write(fmt.Sprintf(`{"op":"sync","id":"s","cursors":%s}`, b))
	f := c.reply("s")
	if f.T != protocol.FrameRes {
		t.Fatalf("sync: %+v", f.Err)
	}
	var s protocol.SyncResult
	if err := json.Unmarshal(f.Data, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func syncConv(s protocol.SyncResult, conv string) protocol.SyncConv {
	for _, c := range s.Convs {
		if c.Conv == conv {
			return c
		}
	}
	return protocol.SyncConv{}
}

// TestBackupRestore: natter dev with traffic from SDK clients; a full
// backup while a group keeps receiving messages; more traffic; an
// incremental backup, again under traffic; the deployment is wiped (a new
// data dir: new embedded NATS and FerretDB) and restored. Then every acked
// message is in the history once and in order, new sends get the next
// seqs, a retried cmid gets its original seq, and a device's delivered
// cursor resumes: its sync returns only what is new.
func TestBackupRestore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dataA := t.TempDir()
	a := startNode(t, node.Config{Mode: node.ModeDev, DataDir: dataA})
	url := []string{wsURL(a)}
	alice := sdk(t, "alice", client.Config{URLs: url})
	direct, err := alice.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	group, err := alice.CreateGroup(ctx, "g", "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	acked := map[string][]natter.Ack{} // conv -> acks in seq order
	var mu sync.Mutex
	send := func(conv string, n int, tag string) {
		t.Helper()
		for i := range n {
			ack, err := alice.Send(ctx, conv, fmt.Sprintf("%s %d", tag, i), client.WithCmid(fmt.Sprintf("%s-%d", tag, i)))
			if err != nil {
				t.Errorf("send %s %d: %v", tag, i, err)
				return
			}
			mu.Lock()
			acked[conv] = append(acked[conv], ack)
			mu.Unlock()
		}
	}
	// background sends to the group while a backup runs: it returns once
	// the first send is acked, and stop returns once at least 20 were.
	background := func(tag string) (stop func()) {
		done, quit, first := make(chan struct{}), make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; i < 2000; i++ {
				if i >= 20 {
					select {
					case <-quit:
						return
					default:
					}
				}
				ack, err := alice.Send(ctx, group.ID, fmt.Sprintf("%s %d", tag, i), client.WithCmid(fmt.Sprintf("%s-%d", tag, i)))
				if err != nil {
					t.Errorf("background send %d: %v", i, err)
					if i == 0 {
						close(first)
					}
					return
				}
				mu.Lock()
				acked[group.ID] = append(acked[group.ID], ack)
				mu.Unlock()
				if i == 0 {
					close(first)
				}
			}
		}()
		<-first
		return func() { close(quit); <-done }
	}

	send(direct.ID, 120, "d1")
	send(group.ID, 50, "g1")
	target := backup.Dir(t.TempDir())
	js, db := backupClients(t, a.NATSURL(), a.MongoURI())
	stop := background("gb1")
	full, err := backup.Run(ctx, backup.Config{JS: js, DB: db, Target: target, Version: "test"})
	stop()
	if err != nil {
		t.Fatalf("full backup: %v", err)
	}
	send(direct.ID, 80, "d2")
	// bob's phone has everything of the direct conversation.
	directHead := acked[direct.ID][len(acked[direct.ID])-1].Seq
	bob := mustDialDevice(t, a, "bob", "phone")
	bob.write(fmt.Sprintf(`{"op":"ack","id":"a","conv":%q,"seq":%d}`, direct.ID, directHead))
	if f := bob.reply("a"); f.T != protocol.FrameRes {
		t.Fatalf("ack: %+v", f.Err)
	}
	mu.Lock()
	groupBefore := len(acked[group.ID])
	mu.Unlock()
	stop = background("gb2")
	inc, err := backup.Run(ctx, backup.Config{JS: js, DB: db, Target: target, Incremental: true, Version: "test"})
	stop()
	if err != nil {
		t.Fatalf("incremental backup: %v", err)
	}
	if inc.Parent != full.ID {
		t.Fatalf("incremental's parent %s, want %s", inc.Parent, full.ID)
	}
	if _, err := backup.Verify(ctx, target, "", nil); err != nil {
		t.Fatalf("verify: %v", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	_ = a.Shutdown(sctx)
	cancel()

	// Wipe: a new data dir, restored with the servers alone, then natter dev.
	dataB := t.TempDir()
	emb, err := backup.StartEmbedded(ctx, dataB, nil)
	if err != nil {
		t.Fatal(err)
	}
	js2, db2 := backupClients(t, emb.NATSURL(), emb.MongoURI())
	if _, err := backup.Restore(ctx, backup.RestoreConfig{JS: js2, DB: db2, Target: target}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	js2.Conn().Close()
	_ = db2.Client().Disconnect(ctx)
	if err := emb.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	b := startNode(t, node.Config{Mode: node.ModeDev, DataDir: dataB})
	alice2 := sdk(t, "alice", client.Config{URLs: []string{wsURL(b)}})

	for _, conv := range []string{direct.ID, group.ID} {
		hist := history(t, alice2, conv)
		want := acked[conv]
		if conv == group.ID {
			// Sends acked while the incremental ran may be in or out;
			// every one acked before it began is in.
			if len(hist) < groupBefore {
				t.Errorf("group: %d messages restored, %d were acked before the incremental began", len(hist), groupBefore)
			}
			want = want[:min(len(want), len(hist))]
		}
		if len(hist) != len(want) {
			t.Errorf("%s: %d messages restored, want %d", conv, len(hist), len(want))
		}
		for i, m := range hist {
			if m.Seq != uint64(i+1) {
				t.Fatalf("%s: history position %d has seq %d: not once and in order", conv, i, m.Seq)
			}
			if i < len(want) && (m.ID != want[i].ID || m.Seq != want[i].Seq) {
				t.Fatalf("%s: seq %d is %s, acked as %s seq %d", conv, m.Seq, m.ID, want[i].ID, want[i].Seq)
			}
		}
	}

	// A retried cmid gets its original seq; a new send the next one.
	retry, err := alice2.Send(ctx, direct.ID, "d1 5", client.WithCmid("d1-5"))
	if err != nil {
		t.Fatal(err)
	}
	if orig := acked[direct.ID][5]; retry.Seq != orig.Seq || retry.ID != orig.ID || !retry.Dup {
		t.Errorf("retried cmid d1-5: seq %d id %s dup %v, want the original seq %d id %s", retry.Seq, retry.ID, retry.Dup, orig.Seq, orig.ID)
	}
	next, err := alice2.Send(ctx, direct.ID, "after restore", client.WithCmid("new-1"))
	if err != nil {
		t.Fatal(err)
	}
	if next.Seq != directHead+1 {
		t.Errorf("new send got seq %d, want %d", next.Seq, directHead+1)
	}
	gnext, err := alice2.Send(ctx, group.ID, "after restore", client.WithCmid("new-g"))
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(len(history(t, alice2, group.ID))); gnext.Seq != want {
		t.Errorf("group: new send got seq %d, want %d (the next)", gnext.Seq, want)
	}

	// bob's phone: its delivered cursor came back, and a sync from it
	// returns only the new message.
	s := deviceSync(t, b, "bob", "phone", map[string]uint64{})
	if got := syncConv(s, direct.ID).Acked; got != directHead {
		t.Fatalf("bob's phone: acked %d after restore, want %d", got, directHead)
	}
	s = deviceSync(t, b, "bob", "phone", map[string]uint64{direct.ID: directHead})
	msgs := syncConv(s, direct.ID).Msgs
	if len(msgs) != 1 || msgs[0].Seq != next.Seq || msgs[0].Body != "after restore" {
		t.Errorf("bob's phone: sync from its cursor returned %d messages (%v), want the one new", len(msgs), msgs)
	}
}

// history reads a conversation's whole history, oldest first.
func history(t *testing.T, c *client.Client, conv string) []natter.Message {
	t.Helper()
	var out []natter.Message
	after := uint64(0)
	for {
		msgs, more, err := c.HistoryAfter(context.Background(), conv, after, 100)
		if err != nil {
			t.Fatalf("history %s after %d: %v", conv, after, err)
		}
		out = append(out, msgs...)
		if !more || len(msgs) == 0 {
			return out
		}
		after = msgs[len(msgs)-1].Seq
	}
}
