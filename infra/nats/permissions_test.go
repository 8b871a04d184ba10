package natsconf_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/revoke"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/attachments"
	"github.com/natter-im/natter/jetstream/cursors"
	"github.com/natter-im/natter/jetstream/natsauth"
	"github.com/natter-im/natter/jetstream/presencekv"
	"github.com/natter-im/natter/jetstream/pushreg"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/jetstream/summaries"
	"github.com/natter-im/natter/workers/webhooks"
)

const confPath = "permissions.conf"

// permServer is a server started from permissions.conf.
type permServer struct {
	url       string
	passwords map[string]string // by user, from the parsed file
}

// startFromConf parses permissions.conf with the server's own parser, moves
// it to a free loopback port and a temp store, and starts it.
func startFromConf(t *testing.T) (*permServer, *server.Options) {
	t.Helper()
	o, err := server.ProcessConfigFile(confPath)
	if err != nil {
		t.Fatalf("%s: %v", confPath, err)
	}
	ps := &permServer{passwords: make(map[string]string)}
	for _, u := range o.Users {
		ps.passwords[u.Username] = u.Password
	}
	o.Host, o.Port = "127.0.0.1", -1
	o.HTTPPort = 0
	o.StoreDir = t.TempDir()
	o.NoLog, o.NoSigs = true, true
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	ps.url = s.ClientURL()
	return ps, o
}

// client is one identity's connection; it records the asynchronous errors
// the server sends (permissions violations).
type client struct {
	user string
	nc   *nats.Conn
	js   jetstream.JetStream

	mu   sync.Mutex
	errs []error
}

func (ps *permServer) connect(t *testing.T, user string) *client {
	t.Helper()
	c := &client{user: user}
	c.nc = testenv.Connect(t, ps.url, nats.UserInfo(user, ps.passwords[user]),
		nats.CustomInboxPrefix(natsauth.InboxPrefix(natsauth.Tier(user))),
		nats.PermissionErrOnSubscribe(true),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.mu.Lock()
			c.errs = append(c.errs, err)
			c.mu.Unlock()
		}))
	c.js = testenv.JetStream(t, c.nc)
	return c
}

// violation returns the permissions violation the server reported for op
// ("Publish" or "Subscription") on subject, or nil.
func (c *client) violation(op, subject string) error {
	want := strings.ToLower(fmt.Sprintf("%s to %q", op, subject))
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, err := range c.errs {
		if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(strings.ToLower(err.Error()), want) {
			return err
		}
	}
	return nil
}

// cannotPublish publishes to subject and waits for the server's
// permissions violation.
func (c *client) cannotPublish(t testing.TB, subject string) {
	t.Helper()
	if err := c.nc.Publish(subject, []byte("denied?")); err != nil {
		t.Fatalf("%s: publish %s: %v", c.user, subject, err)
	}
	c.flush(t)
	testenv.CheckFor(t, 5*time.Second, 2*time.Millisecond, func() error {
		if c.violation("Publish", subject) == nil {
			return fmt.Errorf("%s: no permissions violation for publish to %s", c.user, subject)
		}
		return nil
	})
}

// cannotSubscribe subscribes to subject and expects the subscription to end
// with ErrPermissionViolation.
func (c *client) cannotSubscribe(t testing.TB, subject string) {
	t.Helper()
	sub, err := c.nc.SubscribeSync(subject)
	if err != nil {
		t.Fatalf("%s: subscribe %s: %v", c.user, subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if _, err := sub.NextMsg(5 * time.Second); !errors.Is(err, nats.ErrPermissionViolation) {
		t.Fatalf("%s: subscription to %s: %v, want a permissions violation", c.user, subject, err)
	}
	testenv.CheckFor(t, 5*time.Second, 2*time.Millisecond, func() error {
		if c.violation("Subscription", subject) == nil {
			return fmt.Errorf("%s: no violation reported for subscription to %s", c.user, subject)
		}
		return nil
	})
}

// subscribe subscribes to subject and makes sure the server accepted it.
func (c *client) subscribe(t testing.TB, subject string) *nats.Subscription {
	t.Helper()
	sub, err := c.nc.SubscribeSync(subject)
	if err != nil {
		t.Fatalf("%s: subscribe %s: %v", c.user, subject, err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	c.flush(t)
	if err := c.violation("Subscription", subject); err != nil {
		t.Fatalf("%s: subscribe %s: %v", c.user, subject, err)
	}
	return sub
}

func (c *client) flush(t testing.TB) {
	t.Helper()
	if err := c.nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatalf("%s: flush: %v", c.user, err)
	}
}

// jsPublish publishes through JetStream and returns the stream that stored it.
func (c *client) jsPublish(t testing.TB, subject, msgID string) string {
	t.Helper()
	ack, err := c.js.Publish(ctxT(t), subject, []byte(`{"from":"`+c.user+`"}`), jetstream.WithMsgID(msgID))
	if err != nil {
		t.Fatalf("%s: JetStream publish to %s: %v", c.user, subject, err)
	}
	return ack.Stream
}

// noViolations fails the test for any error the server reported.
func (c *client) noViolations(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, err := range c.errs {
		t.Errorf("%s: unexpected error: %v", c.user, err)
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPermissionsConfig(t *testing.T) {
	t.Parallel()
	ps, o := startFromConf(t)
	if !o.JetStream {
		t.Error("JetStream is off")
	}
	for _, u := range o.Users {
		if u.Account == nil || u.Account.Name != "NATTER" {
			t.Errorf("user %s not in account NATTER", u.Username)
		}
		if !strings.HasPrefix(u.Password, "dev-only-") {
			t.Errorf("user %s: password is not a documented dev placeholder", u.Username)
		}
	}
	for _, user := range []string{"edge", "worker", "service", "admin"} {
		if _, ok := ps.passwords[user]; !ok {
			t.Errorf("no user %s", user)
		}
	}
	if nc, err := nats.Connect(ps.url); err == nil {
		nc.Close()
		t.Error("anonymous connection accepted")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("anonymous: %v, want an authorization error", err)
	}
	if nc, err := nats.Connect(ps.url, nats.UserInfo("service", "guess")); err == nil {
		nc.Close()
		t.Error("wrong password accepted")
	}
}

// TestTierPermissions runs one server from permissions.conf with natter's
// streams and checks, for each tier, what it must be able to do and what it
// must be denied.
func TestTierPermissions(t *testing.T) {
	t.Parallel()
	ps, _ := startFromConf(t)
	admin := ps.connect(t, "admin")
	if _, err := streams.Apply(ctxT(t), admin.js, streams.Config{}); err != nil {
		t.Fatalf("admin: apply streams: %v", err)
	}
	edge := ps.connect(t, "edge")
	worker := ps.connect(t, "worker")
	svc := ps.connect(t, "service")

	// The worker tier serves the service API and the conversations service.
	api, err := micro.AddService(worker.nc, micro.Config{Name: "natter-api", Version: "0.0.1", QueueGroup: "natter-api"})
	if err != nil {
		t.Fatalf("worker: add service: %v", err)
	}
	t.Cleanup(func() { _ = api.Stop() })
	if err := api.AddEndpoint("send", micro.HandlerFunc(func(r micro.Request) {
		_ = r.Respond([]byte("sent:" + string(r.Data())))
	}), micro.WithEndpointSubject("natter.api.send")); err != nil {
		t.Fatalf("worker: add endpoint: %v", err)
	}
	conv, err := worker.nc.QueueSubscribe("natter.conv.>", "natter-conversations", func(m *nats.Msg) { _ = m.Respond([]byte("members")) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conv.Unsubscribe() })
	worker.flush(t)

	t.Run("natter processes start without admin rights", func(t *testing.T) {
		for _, c := range []*client{edge, worker} {
			changes, err := streams.Apply(ctxT(t), c.js, streams.Config{})
			if err != nil || len(changes) != 0 {
				t.Errorf("%s: apply: %v, %v", c.user, changes, err)
			}
			if _, err := c.js.AccountInfo(ctxT(t)); err != nil {
				t.Errorf("%s: account info: %v", c.user, err)
			}
		}
	})

	t.Run("attachments", func(t *testing.T) {
		// The edge uploads and queues a thumbnail job; the worker tier
		// (thumbs, attachgc) reads, updates and deletes.
		id := attachments.NewID()
		est, err := attachments.OpenObjectStore(ctxT(t), edge.js)
		if err != nil {
			t.Fatal(err)
		}
		emeta, err := attachments.OpenBucket(ctxT(t), edge.js)
		if err != nil {
			t.Fatal(err)
		}
		big := strings.Repeat("x", 300<<10)
		if _, err := est.Put(ctxT(t), id, strings.NewReader(big), -1, "text/plain"); err != nil {
			t.Fatalf("edge: put: %v", err)
		}
		if _, err := emeta.AddUsed(ctxT(t), "alice", 5, 1<<20); err != nil {
			t.Fatalf("edge: quota: %v", err)
		}
		if err := emeta.Create(ctxT(t), attachments.Meta{ID: id, Owner: "alice", Type: "text/plain", Size: int64(len(big))}); err != nil {
			t.Fatalf("edge: metadata: %v", err)
		}
		if _, err := emeta.Update(ctxT(t), id, func(m *attachments.Meta) (bool, error) { m.Convs = []string{"c1"}; return true, nil }); err != nil {
			t.Fatalf("edge: record a send: %v", err)
		}
		if s := edge.jsPublish(t, subjects.AttachThumb(id), id); s != subjects.StreamAttach {
			t.Fatalf("thumbnail job stored in %q", s)
		}
		rc, err := est.Get(ctxT(t), id, 10, 5)
		if err != nil {
			t.Fatalf("edge: get: %v", err)
		}
		rc.Close()
		wst, err := attachments.OpenObjectStore(ctxT(t), worker.js)
		if err != nil {
			t.Fatal(err)
		}
		wmeta, err := attachments.OpenBucket(ctxT(t), worker.js)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := wst.Put(ctxT(t), subjects.AttachThumbObject(id), strings.NewReader("thumb"), 5, "image/png"); err != nil {
			t.Fatalf("worker: put thumbnail: %v", err)
		}
		m, rev, err := wmeta.Get(ctxT(t), id)
		if err != nil {
			t.Fatalf("worker: metadata: %v", err)
		}
		if _, err := wmeta.IDs(ctxT(t)); err != nil {
			t.Fatalf("worker: list: %v", err)
		}
		if err := attachments.Remove(ctxT(t), wmeta, wst, m, rev); err != nil {
			t.Fatalf("worker: remove: %v", err)
		}
		edge.noViolations(t)
		worker.noViolations(t)
	})

	t.Run("service", func(t *testing.T) {
		if s := svc.jsPublish(t, "im.ingest.c1", "svc-1"); s != "INGEST" {
			t.Fatalf("ingest publish stored in %q", s)
		}
		reply, err := svc.nc.Request("natter.api.send", []byte("hi"), 5*time.Second)
		if err != nil || string(reply.Data) != "sent:hi" {
			t.Fatalf("request natter.api.send: %v, %v", reply, err)
		}
		if _, err := svc.nc.Request("$SRV.PING.natter-api", nil, 5*time.Second); err != nil {
			t.Fatalf("discovery: %v", err)
		}

		// Its own durable consumer on EVENTS.
		if s := worker.jsPublish(t, "im.evt.message_created.c1", "ev-1"); s != webhooks.StreamEvents {
			t.Fatalf("event stored in %q", s)
		}
		cons, err := svc.js.CreateConsumer(ctxT(t), webhooks.StreamEvents, jetstream.ConsumerConfig{
			Durable: "ANALYTICS", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "im.evt.message_created.>",
		})
		if err != nil {
			t.Fatalf("create consumer: %v", err)
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if err := m.DoubleAck(ctxT(t)); err != nil {
				t.Fatalf("ack: %v", err)
			}
		}
		if n != 1 || batch.Error() != nil {
			t.Fatalf("fetched %d events, %v", n, batch.Error())
		}
		svc.noViolations(t)

		// Not an edge: no log appends, no deliveries, no events, no KV.
		for _, subj := range []string{
			"im.msg.svc", "im.dlv.alice", "im.dlv.grp.all", "im.evt.message_created.c1", "im.dlq.svc", "im.members.c1",
			"$KV.IDEM.k", "$JS.API.DIRECT.GET.MSGS.im.msg.c1", "natter.conv.get",
			"$JS.API.STREAM.PURGE.EVENTS", "$JS.API.CONSUMER.DELETE.EVENTS.ANALYTICS",
			"$JS.API.CONSUMER.MSG.NEXT.MSGS.PERSIST",
		} {
			svc.cannotPublish(t, subj)
		}
		// Nor reads another tier's subjects, nor poses as the API.
		for _, subj := range []string{"im.dlv.alice", "im.dlv.grp.all", "im.dlv.>", "im.msg.>", "im.members.>", "natter.api.>", "natter.conv.>"} {
			svc.cannotSubscribe(t, subj)
		}
		s, err := admin.js.Stream(ctxT(t), "MSGS")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetLastMsgForSubject(ctxT(t), "im.msg.svc"); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Fatalf("the denied publish reached the log: %v", err)
		}
	})

	t.Run("edge", func(t *testing.T) {
		if s := edge.jsPublish(t, "im.msg.c1", "m_1"); s != "MSGS" {
			t.Fatalf("log append stored in %q", s)
		}
		s, err := edge.js.Stream(ctxT(t), "MSGS")
		if err != nil {
			t.Fatal(err)
		}
		if raw, err := s.GetLastMsgForSubject(ctxT(t), "im.msg.c1"); err != nil || raw.Header.Get(jetstream.MsgIDHeader) != "m_1" {
			t.Fatalf("direct get last: %v, %v", raw, err)
		}
		// The append's retry check reads the PERSIST consumer's ack floor.
		if _, err := edge.js.Consumer(ctxT(t), "MSGS", "PERSIST"); err != nil {
			t.Fatalf("consumer info MSGS/PERSIST: %v", err)
		}
		// A sync page's batched read of the cursors.
		curs, err := cursors.Open(ctxT(t), edge.nc, edge.js)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := curs.Raise(ctxT(t), "alice.d1.c1", 3); err != nil {
			t.Fatalf("edge: raise a delivered cursor: %v", err)
		}
		if got, err := curs.Get(ctxT(t), []string{"alice.d1.c1", "alice.c1"}); err != nil || got["alice.d1.c1"] != 3 {
			t.Fatalf("edge: batched cursors read: %v, %v", got, err)
		}
		for _, bucket := range []string{"CURSORS"} {
			kv, err := edge.js.KeyValue(ctxT(t), bucket)
			if err != nil {
				t.Fatalf("bucket %s: %v", bucket, err)
			}
			if _, err := kv.Create(ctxT(t), "c1.m_1", []byte("1")); err != nil {
				t.Fatalf("%s create: %v", bucket, err)
			}
			if e, err := kv.Get(ctxT(t), "c1.m_1"); err != nil || string(e.Value()) != "1" {
				t.Fatalf("%s get: %v, %v", bucket, e, err)
			}
		}
		// push.register and push.unregister.
		regs, err := pushreg.Open(ctxT(t), edge.nc, edge.js)
		if err != nil {
			t.Fatal(err)
		}
		if err := regs.Put(ctxT(t), "alice", "d1", pushreg.Registration{Provider: pushreg.APNs, Token: "00"}); err != nil {
			t.Fatalf("edge: push registration: %v", err)
		}
		if err := regs.Put(ctxT(t), "alice", "d2", pushreg.Registration{Provider: pushreg.APNs, Token: "00"}); err != nil {
			t.Fatalf("edge: push registration: %v", err)
		}
		if err := regs.Delete(ctxT(t), "alice", "d2"); err != nil {
			t.Fatalf("edge: push unregister: %v", err)
		}
		if reply, err := edge.nc.Request("natter.conv.members", nil, 5*time.Second); err != nil || string(reply.Data) != "members" {
			t.Fatalf("request natter.conv.members: %v, %v", reply, err)
		}
		dlv := edge.subscribe(t, "im.dlv.bob")
		edge.subscribe(t, "im.members.>")
		edge.noViolations(t)

		// Typing frames: an edge publishes to the members' delivery
		// subjects itself; deliveries of messages come from the worker tier.
		if err := edge.nc.Publish("im.dlv.bob", []byte("typing")); err != nil {
			t.Fatal(err)
		}
		edge.flush(t)
		if m, err := dlv.NextMsg(5 * time.Second); err != nil || string(m.Data) != "typing" {
			t.Fatalf("typing: %v, %v", m, err)
		}
		if err := worker.nc.Publish("im.dlv.bob", []byte("from worker")); err != nil {
			t.Fatal(err)
		}
		worker.flush(t)
		if m, err := dlv.NextMsg(5 * time.Second); err != nil || string(m.Data) != "from worker" {
			t.Fatalf("delivery: %v, %v", m, err)
		}
		// The broadcast of large groups' batches (subjects.DeliverGroups),
		// the same way.
		bcast := edge.subscribe(t, "im.dlv.grp.all")
		edge.cannotPublish(t, "im.dlv.grp.all")
		if err := worker.nc.Publish("im.dlv.grp.all", []byte("broadcast")); err != nil {
			t.Fatal(err)
		}
		worker.flush(t)
		if m, err := bcast.NextMsg(5 * time.Second); err != nil || string(m.Data) != "broadcast" {
			t.Fatalf("broadcast: %v, %v", m, err)
		}
		for _, subj := range []string{
			"im.ingest.c1", "im.evt.message_created.c1", "im.dlq.edge", "im.members.c1", "natter.api.send",
			"$KV.SUMMARIES.c1", "$JS.API.STREAM.DELETE.MSGS", "$JS.API.STREAM.PURGE.MSGS",
			"$JS.API.CONSUMER.MSG.NEXT.MSGS.PERSIST", "$JS.API.CONSUMER.CREATE.MSGS.SNOOP",
		} {
			edge.cannotPublish(t, subj)
		}
		// Nor the other tiers' replies.
		for _, subj := range []string{"im.msg.>", "im.evt.>", "im.ingest.>", "natter.api.>", "natter.conv.>", "_INBOX.>", "_INBOX_WORKER.>"} {
			edge.cannotSubscribe(t, subj)
		}
	})

	t.Run("revocations", func(t *testing.T) {
		// The worker tier serves the admin API: it writes REVOKED and the
		// audit events; the edge only watches the bucket.
		w := revoke.NewWriter(worker.js, time.Hour)
		if _, err := w.Ban(ctxT(t), "mallory", "test", time.Time{}, time.Now()); err != nil {
			t.Fatalf("worker: ban: %v", err)
		}
		kv, err := edge.js.KeyValue(ctxT(t), subjects.BucketRevoked)
		if err != nil {
			t.Fatalf("edge: bucket: %v", err)
		}
		v, err := revoke.Watch(ctxT(t), kv, nil, nil)
		if err != nil {
			t.Fatalf("edge: watch: %v", err)
		}
		defer v.Stop()
		if err := v.Check(revoke.Token{User: "mallory"}, time.Now()); !errors.Is(err, revoke.ErrBanned) {
			t.Fatalf("edge: the watched view misses the ban: %v", err)
		}
		if _, err := w.Unban(ctxT(t), "mallory"); err != nil {
			t.Fatalf("worker: unban: %v", err)
		}
		testenv.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
			return v.Check(revoke.Token{User: "mallory"}, time.Now())
		})
		edge.cannotPublish(t, subjects.KVSubject(subjects.BucketRevoked, subjects.BanKey("bob")))
		svc.cannotPublish(t, subjects.KVSubject(subjects.BucketRevoked, subjects.BanKey("bob")))
	})

	t.Run("worker", func(t *testing.T) {
		// Consume a role's durable consumer and ack.
		cons, err := worker.js.Consumer(ctxT(t), "MSGS", "PERSIST")
		if err != nil {
			t.Fatal(err)
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			if err := m.DoubleAck(ctxT(t)); err != nil {
				t.Fatalf("ack: %v", err)
			}
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(ctxT(t))
		if err != nil || info.AckFloor.Stream == 0 {
			t.Fatalf("ack floor after ack: %+v, %v", info, err)
		}
		// Dead letters, events, the webhooks role's own consumers.
		if s := worker.jsPublish(t, "im.dlq.webhook_x", "dl-1"); s != "DLQ" {
			t.Fatalf("dead letter stored in %q", s)
		}
		ep := webhooks.Endpoint{Name: "crm", URL: "https://crm.example/hooks", Secret: "0123456789abcdef"}
		if _, err := webhooks.EnsureConsumers(ctxT(t), worker.js, webhooks.StreamEvents, []webhooks.Endpoint{ep}); err != nil {
			t.Fatalf("webhook consumers: %v", err)
		}
		ep.Kinds = []string{webhooks.KindMemberJoined, webhooks.KindMemberLeft}
		if changes, err := webhooks.EnsureConsumers(ctxT(t), worker.js, webhooks.StreamEvents, []webhooks.Endpoint{ep}); err != nil || len(changes) != 1 {
			t.Fatalf("webhook consumer update: %v, %v", changes, err)
		}
		worker.subscribe(t, "im.members.>")
		// The push role reads the registrations (batched) and the online
		// leases, and deletes an unregistered device's registration.
		regs, err := pushreg.Open(ctxT(t), worker.nc, worker.js)
		if err != nil {
			t.Fatal(err)
		}
		devs, err := regs.Users(ctxT(t), []string{"alice"})
		if err != nil || len(devs["alice"]) != 1 {
			t.Fatalf("worker: push registrations: %v, %v", devs, err)
		}
		if err := regs.DeleteIf(ctxT(t), devs["alice"][0]); err != nil {
			t.Fatalf("worker: delete an unregistered device: %v", err)
		}
		if _, err := presencekv.Read(ctxT(t), worker.nc, "$JS.API.DIRECT.GET.KV_PRESENCE", []string{"alice"}); err != nil {
			t.Fatalf("worker: online leases: %v", err)
		}
		// Read cursors (raised by the conversations service and the persist
		// role) and the summaries the conversations service keeps.
		curs, err := cursors.Open(ctxT(t), worker.nc, worker.js)
		if err != nil {
			t.Fatal(err)
		}
		if err := curs.RaiseAll(ctxT(t), map[string]uint64{"alice.c1": 5}); err != nil {
			t.Fatalf("worker: raise read cursors: %v", err)
		}
		if got, err := curs.Get(ctxT(t), []string{"alice.c1"}); err != nil || got["alice.c1"] != 5 {
			t.Fatalf("worker: batched cursors read: %v, %v", got, err)
		}
		sums, err := summaries.Open(ctxT(t), worker.nc, worker.js)
		if err != nil {
			t.Fatal(err)
		}
		if err := sums.PutAll(ctxT(t), []summaries.Item{{Conv: natter.Conversation{ID: "c1", Kind: natter.KindDirect}}}); err != nil {
			t.Fatalf("worker: write summaries: %v", err)
		}
		if got, err := sums.Get(ctxT(t), []string{"c1"}); err != nil || !got["c1"].Found {
			t.Fatalf("worker: batched summaries read: %v, %v", got, err)
		}
		if err := sums.Drop(ctxT(t), "c1"); err != nil {
			t.Fatalf("worker: drop a summary: %v", err)
		}
		worker.noViolations(t)

		for _, subj := range []string{
			"im.ingest.c1", "natter.api.send", "$KV.PRESENCE.k",
			"$JS.API.STREAM.DELETE.MSGS", "$JS.API.CONSUMER.DELETE.MSGS.PERSIST", "$JS.API.STREAM.CREATE.SNOOP",
		} {
			worker.cannotPublish(t, subj)
		}
		for _, subj := range []string{"im.dlv.>", "im.msg.>", "_INBOX.>", "_INBOX_EDGE.>"} {
			worker.cannotSubscribe(t, subj)
		}
	})
}

// TestPermissionsMatchTable: every tier's user in permissions.conf has
// exactly the allow lists of jetstream/natsauth (the one place they are
// written; the embedded servers of the tests and natter cluster up render
// them from there), and admin has no limits.
func TestPermissionsMatchTable(t *testing.T) {
	t.Parallel()
	o, err := server.ProcessConfigFile(confPath)
	if err != nil {
		t.Fatal(err)
	}
	byUser := map[string]*server.User{}
	for _, u := range o.Users {
		byUser[u.Username] = u
	}
	for _, tier := range natsauth.Tiers {
		u := byUser[string(tier)]
		if u == nil {
			t.Errorf("no user %s", tier)
			continue
		}
		if u.Account == nil || u.Account.Name != natsauth.Account {
			t.Errorf("user %s not in account %s", tier, natsauth.Account)
		}
		want := natsauth.For(tier)
		if want.All {
			if u.Permissions != nil {
				t.Errorf("%s: has permissions %+v, want none (everything allowed)", tier, u.Permissions)
			}
			continue
		}
		if u.Permissions == nil || u.Permissions.Publish == nil || u.Permissions.Subscribe == nil {
			t.Errorf("%s: no publish or subscribe permissions", tier)
			continue
		}
		sameSet(t, string(tier)+" publish allow", u.Permissions.Publish.Allow, want.Publish)
		sameSet(t, string(tier)+" subscribe allow", u.Permissions.Subscribe.Allow, want.Subscribe)
		if len(u.Permissions.Publish.Deny) > 0 || len(u.Permissions.Subscribe.Deny) > 0 {
			t.Errorf("%s: deny lists in the file, none in the table", tier)
		}
		if got := u.Permissions.Response != nil; got != want.AllowResponses {
			t.Errorf("%s: allow_responses %v, table %v", tier, got, want.AllowResponses)
		} else if got && u.Permissions.Response.MaxMsgs != natsauth.ResponsesMax {
			t.Errorf("%s: allow_responses max %d, table %d", tier, u.Permissions.Response.MaxMsgs, natsauth.ResponsesMax)
		}
	}
}

func sameSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	in := func(list []string, s string) bool { return slices.Contains(list, s) }
	for _, s := range want {
		if !in(got, s) {
			t.Errorf("%s: permissions.conf lacks %q", what, s)
		}
	}
	for _, s := range got {
		if !in(want, s) {
			t.Errorf("%s: permissions.conf has %q, which jetstream/natsauth does not", what, s)
		}
	}
}
