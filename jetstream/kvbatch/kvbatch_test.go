package kvbatch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/kvbatch"
)

// TestMultiLast reads the last entry of each key in one request: keys
// written twice come with their last value, missing keys are left out, a
// batch that matches nothing ends cleanly, and a subject nobody serves is
// an error at once (no responders). The same through a Mux.
func TestMultiLast(t *testing.T) {
	t.Run("request", func(t *testing.T) { testMultiLast(t, nil) })
	t.Run("mux", func(t *testing.T) {
		testMultiLast(t, func(nc *nats.Conn) multiLast {
			m, err := kvbatch.NewMux(nc)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = m.Close() })
			return m.MultiLast
		})
	})
}

type multiLast func(ctx context.Context, nc *nats.Conn, directGet string, filters []string, fn func(*nats.Msg)) error

func testMultiLast(t *testing.T, mux func(*nats.Conn) multiLast) {
	srv := testenv.StartNATS(t)
	nc := testenv.Connect(t, srv.ClientURL())
	js := testenv.JetStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "T"})
	if err != nil {
		t.Fatal(err)
	}
	for _, kvp := range [][2]string{{"a", "1"}, {"b", "1"}, {"a", "2"}, {"c", "3"}} {
		if _, err := kv.PutString(ctx, kvp[0], kvp[1]); err != nil {
			t.Fatal(err)
		}
	}
	read := multiLast(kvbatch.MultiLast)
	if mux != nil {
		read = mux(nc)
	}
	const direct = "$JS.API.DIRECT.GET.KV_T"
	got := map[string]string{}
	err = read(ctx, nc, direct, []string{"$KV.T.a", "$KV.T.c", "$KV.T.missing"}, func(m *nats.Msg) {
		got[m.Header.Get(jetstream.SubjectHeader)] = string(m.Data)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["$KV.T.a"] != "2" || got["$KV.T.c"] != "3" {
		t.Fatalf("got %v, want a=2 and c=3", got)
	}
	n := 0
	if err := read(ctx, nc, direct, []string{"$KV.T.none"}, func(*nats.Msg) { n++ }); err != nil || n != 0 {
		t.Fatalf("nothing matched: %d entries, err %v", n, err)
	}
	err = read(ctx, nc, "$JS.API.DIRECT.GET.KV_NOBUCKET", []string{"$KV.NOBUCKET.a"}, func(*nats.Msg) {})
	if !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("unserved subject: %v, want no responders", err)
	}
}

// TestDirectGet: the subject honours a domain, an API prefix with or
// without its dot, and defaults to $JS.API.
func TestDirectGet(t *testing.T) {
	for _, c := range []struct {
		o    jetstream.JetStreamOptions
		want string
	}{
		{jetstream.JetStreamOptions{}, "$JS.API.DIRECT.GET.KV_B"},
		{jetstream.JetStreamOptions{Domain: "hub"}, "$JS.hub.API.DIRECT.GET.KV_B"},
		{jetstream.JetStreamOptions{APIPrefix: "acc.API"}, "acc.API.DIRECT.GET.KV_B"},
		{jetstream.JetStreamOptions{APIPrefix: "acc.API."}, "acc.API.DIRECT.GET.KV_B"},
	} {
		if got := kvbatch.BucketDirectGet(c.o, "B"); got != c.want {
			t.Errorf("%+v: %s, want %s", c.o, got, c.want)
		}
	}
}

// TestMultiLastSharesSubscription: the reads of one connection share one
// reply subscription (made at the first), so that a storm of reads costs
// the server no subscribe and unsubscribe per read; a read after the
// connection's subscription has gone (drained) makes a new one.
func TestMultiLastSharesSubscription(t *testing.T) {
	srv := testenv.StartNATS(t)
	nc := testenv.Connect(t, srv.ClientURL())
	js := testenv.JetStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "T"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.PutString(ctx, "a", "1"); err != nil {
		t.Fatal(err)
	}
	const direct = "$JS.API.DIRECT.GET.KV_T"
	inserts := func() uint64 {
		sz, err := srv.Subsz(nil)
		if err != nil {
			t.Fatal(err)
		}
		return sz.NumInserts
	}
	before := inserts()
	const reads = 200
	errs := make(chan error, reads)
	for range reads {
		go func() {
			n := 0
			err := kvbatch.MultiLast(ctx, nc, direct, []string{"$KV.T.a"}, func(*nats.Msg) { n++ })
			if err == nil && n != 1 {
				err = errors.New("want 1 entry")
			}
			errs <- err
		}()
	}
	for range reads {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := inserts() - before; got > 1 {
		t.Errorf("%d reads made %d subscriptions at the server, want 1", reads, got)
	}
	other := testenv.Connect(t, srv.ClientURL())
	if err := kvbatch.MultiLast(ctx, other, direct, []string{"$KV.T.a"}, func(*nats.Msg) {}); err != nil {
		t.Fatalf("second connection: %v", err)
	}
	if err := other.Drain(); err != nil {
		t.Fatal(err)
	}
	for !other.IsClosed() {
		if ctx.Err() != nil {
			t.Fatal("drain did not close the connection")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := kvbatch.MultiLast(ctx, nc, direct, []string{"$KV.T.a"}, func(*nats.Msg) {}); err != nil {
		t.Fatalf("after another connection closed: %v", err)
	}
}
