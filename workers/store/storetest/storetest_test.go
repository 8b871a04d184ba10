package storetest_test

import (
	"context"
	"net"
	"net/url"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/workers/store"
	"github.com/natter-im/natter/workers/store/storetest"
)

// TestNew: the store takes and counts messages; its FerretDB no longer
// accepts connections once the test that started it has ended.
func TestNew(t *testing.T) {
	t.Parallel()
	var addr string
	t.Run("store", func(t *testing.T) {
		emb := storetest.StartEmbedded(t, "")
		u, err := url.Parse(emb.URI())
		if err != nil {
			t.Fatal(err)
		}
		addr = u.Host
		s := storetest.Open(t, store.Config{URI: emb.URI()})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		m := natter.Message{ID: "m_c1_1", Conv: "c1", Seq: 1, From: "alice", Cmid: "1", Body: "hi", TS: time.Now().UnixMilli()}
		if n, err := s.InsertMessages(ctx, []natter.Message{m}); err != nil || n != 1 {
			t.Fatalf("insert: %d %v", n, err)
		}
		if n, err := s.CountMessages(ctx, "c1"); err != nil || n != 1 {
			t.Fatalf("count: %d %v", n, err)
		}
	})
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("embedded store at %s still accepts connections after its test ended", addr)
	}
}
