package attachments_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/attachments"
	"github.com/natter-im/natter/jetstream/attachments/storetest"
	"github.com/natter-im/natter/jetstream/streams"
)

// startJS starts an embedded nats-server with JetStream and applies the
// stream definitions.
func startJS(t testing.TB) jetstream.JetStream {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := streams.Apply(ctx, js, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	return js
}

func TestObjectStore(t *testing.T) {
	t.Parallel()
	js := startJS(t)
	st, err := attachments.OpenObjectStore(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	storetest.Run(t, st)
}
