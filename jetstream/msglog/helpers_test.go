package msglog_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/natsembed"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
)

// startServer runs an embedded server with natter's streams applied.
func startServer(tb testing.TB, cfg streams.Config) *natsembed.Server {
	tb.Helper()
	s := testenv.StartNATS(tb)
	_, js := connect(tb, s)
	if _, err := streams.Apply(context.Background(), js, cfg); err != nil {
		tb.Fatal(err)
	}
	return s
}

// connect opens a connection of its own, as a separate process would.
func connect(tb testing.TB, s *natsembed.Server) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc := testenv.Connect(tb, s.ClientURL())
	return nc, testenv.JetStream(tb, nc)
}

// newLog returns a Log on a connection of its own.
func newLog(tb testing.TB, s *natsembed.Server) (*msglog.Log, jetstream.JetStream) {
	tb.Helper()
	nc, js := connect(tb, s)
	l, err := msglog.New(context.Background(), nc, js, msglog.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	return l, js
}

// appendN appends seqs 1..n to conv and checks each ack.
func appendN(tb testing.TB, l *msglog.Log, conv string, n int) []natter.Ack {
	tb.Helper()
	acks := make([]natter.Ack, 0, n)
	for i := 1; i <= n; i++ {
		ack, err := l.Append(context.Background(), msglog.Send{Conv: conv, From: "u1", Cmid: fmt.Sprintf("c%d", i), Body: fmt.Sprint("body ", i)})
		if err != nil {
			tb.Fatalf("append %d: %v", i, err)
		}
		acks = append(acks, ack)
	}
	msglog.FlushIdem(tb, l)
	return acks
}

// entries reports how many log entries conv has in the stream.
func entries(tb testing.TB, js jetstream.JetStream, conv string) uint64 {
	tb.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, subjects.StreamMsgs)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subjects.Msg(conv)))
	if err != nil {
		tb.Fatal(err)
	}
	return info.State.Subjects[subjects.Msg(conv)]
}

// seqs lists the seqs of msgs.
func seqs(msgs []natter.Message) []uint64 {
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}

// span returns from..to, nil when from > to.
func span(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to && from > 0; s++ {
		out = append(out, s)
	}
	return out
}
