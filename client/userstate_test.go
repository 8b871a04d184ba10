package client_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/subjects"
)

// TestSyncPagesStateAndResume: a user in 1,100 conversations (three pages
// of the full sync) resumes from cursors for all of them: the SDK pages
// through, gets exactly the messages after each cursor, drops the one
// conversation the user is not in, and reports each conversation's read
// state and the total. Then the app is reinstalled on the same device (no
// cursors): it resumes after the device's delivered cursor on the server,
// not at the head.
func TestSyncPagesStateAndResume(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	url := []string{wsURL(dev)}
	user, device := uniq("many"), "phone"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nc := testenv.Connect(t, dev.NATSURL())
	js := testenv.JetStream(t, nc)
	log, err := msglog.New(ctx, nc, js, msglog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1100
	convs := make([]string, n)
	sent := map[string]int{} // messages from the peer
	var mu sync.Mutex
	var wg sync.WaitGroup
	ch := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range ch {
				peer := "p" + strconv.Itoa(i)
				c := natter.Conversation{ID: natter.DirectID(user, peer), Kind: natter.KindDirect, CreatedBy: peer, Members: []string{user, peer}}
				if _, err := dev.Store().CreateConversation(ctx, c); err != nil {
					t.Error(err)
					continue
				}
				k := 0
				if i%100 == 7 {
					k = i%3 + 1
				}
				for j := range k {
					if _, err := log.Append(ctx, msglog.Send{Conv: c.ID, From: peer, Cmid: fmt.Sprint("m", j), Body: "hi", FirstAttempt: true}); err != nil {
						t.Error(err)
					}
				}
				mu.Lock()
				convs[i], sent[c.ID] = c.ID, k
				mu.Unlock()
			}
		})
	}
	for i := range n {
		ch <- i
	}
	close(ch)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	cursors := map[string]uint64{"d_gone": 4}
	var total, want uint64
	for _, id := range convs {
		cursors[id] = 0
		total += uint64(sent[id])
	}
	want = total
	c := dial(t, url, user, func(cfg *client.Config) {
		cfg.Device, cfg.Cursors, cfg.AutoAck = device, cursors, 20*time.Millisecond
	})
	got := map[string]int{}
	for _, m := range recv(t, c, int(want)) {
		got[m.Conv]++
	}
	quiet(t, c, 200*time.Millisecond)
	for id, k := range sent {
		if got[id] != k {
			t.Fatalf("%s: %d messages, want %d", id, got[id], k)
		}
		st, ok := c.ReadState(id)
		if !ok || st.Head != uint64(k) || st.Read != 0 || st.Unread != uint64(k) {
			t.Fatalf("%s: state %+v (%v), want head and unread %d", id, st, ok, k)
		}
	}
	if _, ok := c.Cursors()["d_gone"]; ok {
		t.Fatal("a conversation the user is not in kept its cursor")
	}
	if c.UnreadTotal() != total {
		t.Fatalf("unread total %d, want %d", c.UnreadTotal(), total)
	}
	list, err := c.Conversations(ctxT(t))
	if err != nil || len(list) != n {
		t.Fatalf("Conversations: %d (%v), want %d", len(list), err, n)
	}
	for _, cv := range list {
		if cv.Unread != uint64(sent[cv.ID]) {
			t.Fatalf("Conversations: %s unread %d, want %d", cv.ID, cv.Unread, sent[cv.ID])
		}
	}

	// The device's acks reach the server; then it is gone, two messages
	// come, and the app is reinstalled with the same device id.
	x := convs[7]
	kv, err := js.KeyValue(ctx, subjects.BucketCursors)
	if err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		e, err := kv.Get(context.Background(), subjects.DeliveredKey(user, device, x))
		if err != nil {
			return err
		}
		if string(e.Value()) != strconv.Itoa(sent[x]) {
			return fmt.Errorf("acked %s", e.Value())
		}
		return nil
	})
	_ = c.Close()
	for j := range 2 {
		if _, err := log.Append(ctx, msglog.Send{Conv: x, From: "p7", Cmid: fmt.Sprint("late", j), Body: "later", FirstAttempt: true}); err != nil {
			t.Fatal(err)
		}
	}
	again := dial(t, url, user, func(cfg *client.Config) { cfg.Device = device })
	checkSeqs(t, recv(t, again, 2), x, uint64(sent[x])+1, []string{"later", "later"})
	quiet(t, again, 200*time.Millisecond)
	if st, _ := again.ReadState(x); st.Acked != uint64(sent[x]) || st.Unread != uint64(sent[x])+2 {
		t.Fatalf("reinstalled: %s state %+v", x, st)
	}
}
