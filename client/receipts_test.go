package client_test

import (
	"errors"
	"testing"
	"time"

	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/edge/protocol"
)

// nextRead reads c's read events until one of conv by user at seq,
// failing after 20s.
func nextRead(t testing.TB, c *client.Client, conv, user string, seq uint64) {
	t.Helper()
	timeout := time.NewTimer(20 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case f, ok := <-c.ReadEvents():
			if !ok {
				t.Fatalf("%s: read events closed (err %v)", c.User(), c.Err())
			}
			if f.Conv == conv && f.User == user && f.Seq == seq {
				return
			}
		case <-timeout.C:
			t.Fatalf("%s: no read event %s %s@%d within 20s (stats %+v)", c.User(), conv, user, seq, c.Stats())
		}
	}
}

// TestReadEventsAndReceipts: a read reaches the reader's other device and
// the other member on ReadEvents; Receipts pages the members' cursors and
// refuses a bad limit.
func TestReadEventsAndReceipts(t *testing.T) {
	dev := startDev(t)
	urls := []string{wsURL(dev)}
	alice, bob := uniq("alice"), uniq("bob")
	a1, a2 := dial(t, urls, alice), dial(t, urls, alice)
	b := dial(t, urls, bob)
	ctx := ctxT(t)
	conv, err := a1.CreateDirect(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	if err := a1.MarkRead(ctx, conv.ID, 4); err != nil {
		t.Fatal(err)
	}
	nextRead(t, a2, conv.ID, alice, 4)
	nextRead(t, b, conv.ID, alice, 4)

	first, err := b.Receipts(ctx, conv.ID, "", 1)
	if err != nil || len(first.Reads) != 1 || first.Next == "" {
		t.Fatalf("first page: %+v, %v", first, err)
	}
	second, err := b.Receipts(ctx, conv.ID, first.Next, 1)
	if err != nil || len(second.Reads) != 1 || second.Next != "" {
		t.Fatalf("second page: %+v, %v", second, err)
	}
	got := map[string]uint64{first.Reads[0].User: first.Reads[0].Seq, second.Reads[0].User: second.Reads[0].Seq}
	if got[alice] != 4 || got[bob] != 0 || len(got) != 2 {
		t.Fatalf("receipts %+v", got)
	}
	if _, err := b.Receipts(ctx, conv.ID, "", protocol.MaxReceiptsLimit+1); !errors.Is(err, &client.Error{Code: protocol.CodeBadFrame}) {
		t.Fatalf("limit past the bound: %v, want bad_frame", err)
	}
}
