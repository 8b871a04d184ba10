package test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	adminapi "github.com/natter-im/natter/internal/admin"
	"github.com/natter-im/natter/internal/devpki"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/natsauth"
	"github.com/natter-im/natter/jetstream/natsembed"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/discovery"
	"github.com/natter-im/natter/workers/store/storetest"
	"github.com/natter-im/natter/workers/svcapi"
)

// secureNATS is an embedded nats-server that requires TLS and one nkey
// user per tier, configured from jetstream/natsauth's rendering.
type secureNATS struct {
	url    string
	caFile string
	keys   string // directory of the tiers' seed files
}

func startSecureNATS(t testing.TB) *secureNATS {
	t.Helper()
	dir := t.TempDir()
	ca, err := devpki.NewCA("natter test ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s := &secureNATS{caFile: filepath.Join(dir, "ca.pem"), keys: filepath.Join(dir, "keys")}
	if err := devpki.WriteFile(s.caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue([]string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "nats.crt"), filepath.Join(dir, "nats.key")
	if err := srv.WriteFiles(cert, key); err != nil {
		t.Fatal(err)
	}
	pubs, err := natsauth.EnsureKeys(s.keys)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := natsauth.Render(natsauth.ServerConfig{Users: pubs, TLSCert: cert, TLSKey: key})
	if err != nil {
		t.Fatal(err)
	}
	confFile := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	base, err := server.ProcessConfigFile(confFile)
	if err != nil {
		t.Fatalf("rendered config does not parse: %v\n%s", err, conf)
	}
	ns := testenv.StartNATS(t, func(c *natsembed.Config) { c.Base = base })
	s.url = ns.ClientURL()
	return s
}

// violations records the permissions violations a connection is told of.
type violations struct {
	mu   sync.Mutex
	errs []error
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.errs = append(v.errs, err)
}

func (v *violations) find(op, subject string) error {
	want := strings.ToLower(fmt.Sprintf("%s to %q", op, subject))
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, err := range v.errs {
		if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(strings.ToLower(err.Error()), want) {
			return err
		}
	}
	return nil
}

// connect connects as tier over TLS.
func (s *secureNATS) connect(t testing.TB, tier natsauth.Tier, v *violations) *nats.Conn {
	t.Helper()
	auth, err := node.NATSAuthOptions(s.nodeConfig(tier))
	if err != nil {
		t.Fatal(err)
	}
	opts := append(auth, nats.Name("test-"+string(tier)), nats.CustomInboxPrefix(natsauth.InboxPrefix(tier)))
	if v != nil {
		opts = append(opts, nats.ErrorHandler(v.handler), nats.PermissionErrOnSubscribe(true))
	}
	return testenv.Connect(t, s.url, opts...)
}

// nodeConfig is the NATS part of a node.Config for tier.
func (s *secureNATS) nodeConfig(tier natsauth.Tier) node.Config {
	return node.Config{NATSURL: s.url, NATSNkey: natsauth.SeedFile(s.keys, tier), NATSTLSCA: s.caFile}
}

// TestTiersOverTLS runs a natter mesh (an edge, a worker with every role,
// an internal service) on a NATS server that requires TLS and one nkey
// user per tier with the permissions of jetstream/natsauth: messages go end
// to end (WebSocket to WebSocket, service API to WebSocket) with no
// permissions violation in any process's log, while each tier's credential
// is refused what the table denies it, and a client without TLS or with no
// or an unknown key is refused.
func TestTiersOverTLS(t *testing.T) {
	t.Parallel()
	s := startSecureNATS(t)

	// Without TLS, without a key, with a key of no tier: refused.
	if nc, err := nats.Connect(s.url, nats.Timeout(3*time.Second)); err == nil {
		nc.Close()
		t.Fatal("a client without TLS and key connected")
	}
	plainAuth, _ := node.NATSAuthOptions(node.Config{NATSNkey: natsauth.SeedFile(s.keys, natsauth.TierEdge)})
	if nc, err := nats.Connect(s.url, append(plainAuth, nats.Timeout(3*time.Second))...); err == nil {
		nc.Close()
		t.Fatal("a client without TLS connected")
	}
	if nc, err := nats.Connect(s.url, nats.RootCAs(s.caFile), nats.Timeout(3*time.Second)); err == nil {
		nc.Close()
		t.Fatal("a TLS client without a key connected")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("a TLS client without a key: %v, want an authorization error", err)
	}
	strangers := t.TempDir()
	if _, err := natsauth.EnsureKeys(strangers); err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(s.url, append(mustAuth(t, node.Config{NATSNkey: natsauth.SeedFile(strangers, natsauth.TierAdmin), NATSTLSCA: s.caFile}), nats.Timeout(3*time.Second))...); err == nil {
		nc.Close()
		t.Fatal("an unknown key connected")
	}

	// The operator applies the definitions; edge and worker start without
	// admin rights.
	admin := s.connect(t, natsauth.TierAdmin, nil)
	if _, err := streams.Apply(ctxTimeout(t, 30*time.Second), testenv.JetStream(t, admin), streams.Config{}); err != nil {
		t.Fatalf("admin: streams apply: %v", err)
	}
	var logs logBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	wcfg := s.nodeConfig(natsauth.TierWorker)
	wcfg.Mode, wcfg.MongoURI, wcfg.Logger = node.ModeWorker, storetest.StartEmbedded(t, "").URI(), logger.With("tier", "worker")
	wcfg.Admin = adminapi.Config{Token: adminToken}
	worker := startNode(t, wcfg)
	ecfg := s.nodeConfig(natsauth.TierEdge)
	ecfg.Mode, ecfg.Logger = node.ModeEdge, logger.With("tier", "edge")
	edge := startNode(t, ecfg)

	// Two users exchange messages, typing, presence and reads through the
	// edge and the worker.
	alice, bob := mustDial(t, edge, "alice"), mustDial(t, edge, "bob")
	conv := alice.createGroup("tiers", "bob")
	bob.subscribe("sub", "alice")
	ack := alice.send(conv.ID, "c1", "over tls")
	if got := bob.collect(conv.ID, 1); got[ack.Seq].Body != "over tls" {
		t.Fatalf("bob got %+v", got)
	}
	alice.write(fmt.Sprintf(`{"op":"typing","id":"t","conv":%q,"state":"started"}`, conv.ID))
	bob.request("r", fmt.Sprintf(`{"op":"read","id":"r","conv":%q,"seq":%d}`, conv.ID, ack.Seq), nil)
	bob.request("h", fmt.Sprintf(`{"op":"history","id":"h","conv":%q}`, conv.ID), nil)
	bob.request("l", `{"op":"conv.list","id":"l"}`, nil)
	bob.request("sy", `{"op":"sync","id":"sy"}`, nil)
	// Message actions: the ACTIONS bucket, the reaction push and event.
	alice.request("e", fmt.Sprintf(`{"op":"msg.edit","id":"e","conv":%q,"ref":%q,"cmid":"c1e","body":"over tls!"}`, conv.ID, ack.ID), nil)
	bob.request("x", fmt.Sprintf(`{"op":"react","id":"x","conv":%q,"ref":%q,"emoji":"👍"}`, conv.ID, ack.ID), nil)
	if f := alice.nextOf(protocol.FrameReaction); f.Reaction.User != "bob" {
		t.Fatalf("reaction push %+v", f.Reaction)
	}
	alice.request("d", fmt.Sprintf(`{"op":"msg.delete","id":"d","conv":%q,"ref":%q,"cmid":"c1d"}`, conv.ID, ack.ID), nil)

	// An internal service sends through the service API.
	svc := s.connect(t, natsauth.TierService, nil)
	if _, err := svcapi.NewClient(svc, 10*time.Second).Send(ctxTimeout(t, 10*time.Second), svcapi.SendRequest{Service: "bot", Conv: conv.ID, Cmid: "b1", Body: "from a service"}); err != nil {
		t.Fatalf("service send: %v", err)
	}
	for {
		if f := bob.next(); f.T == protocol.FrameMsg && f.Message.Body == "from a service" {
			break
		}
	}

	// The admin API on the worker: a user's sessions on the edges, a freeze
	// the edge enforces, inspect, erase (REVOKED, CURSORS, the archive and
	// the log under the worker's credential).
	if st, m := call(t, worker, adminapi.PathSessions, adminToken, `{"user":"alice"}`); st != http.StatusOK || m["edges"] != float64(1) {
		t.Fatalf("admin sessions: %d %v", st, m)
	}
	if st, m := call(t, worker, adminapi.PathConvFreeze, adminToken, fmt.Sprintf(`{"conv":%q}`, conv.ID)); st != http.StatusOK {
		t.Fatalf("admin freeze: %d %v", st, m)
	}
	if st, m := call(t, worker, adminapi.PathConvInspect, adminToken, fmt.Sprintf(`{"conv":%q}`, conv.ID)); st != http.StatusOK || m["frozen"] != true {
		t.Fatalf("admin inspect: %d %v", st, m)
	}
	if st, m := call(t, worker, adminapi.PathConvUnfreeze, adminToken, fmt.Sprintf(`{"conv":%q}`, conv.ID)); st != http.StatusOK {
		t.Fatalf("admin unfreeze: %d %v", st, m)
	}
	if st, m := call(t, worker, adminapi.PathErase, adminToken, `{"user":"carol"}`); st != http.StatusOK {
		t.Fatalf("admin erase: %d %v", st, m)
	}

	// Attachments with each tier's credential: the edge stores an upload
	// and queues its thumbnail, the worker's thumbs role makes it, and its
	// attachgc role deletes it with the message a service deletes.
	atok, btok := token(t, "alice"), token(t, "bob")
	st, code, att := upload(t, edge, atok, "image/png", "t.png", pngOf(t, 40, 30))
	if st != http.StatusCreated {
		t.Fatalf("upload: %d %s", st, code)
	}
	var sentAck natter.Ack
	alice.request("att", fmt.Sprintf(`{"op":"send","id":"att","conv":%q,"cmid":"att-1","attachments":[{"id":%q}]}`, conv.ID, att.ID), &sentAck)
	attURL := "http://" + edge.Addr() + "/v1/attachments/" + att.ID
	testenv.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		if resp, _ := get(t, attURL+"/thumb", btok); resp.StatusCode != http.StatusOK {
			return fmt.Errorf("thumbnail: %d", resp.StatusCode)
		}
		return nil
	})
	if _, err := svcapi.NewClient(svc, 10*time.Second).Delete(ctxTimeout(t, 10*time.Second), svcapi.DeleteRequest{Service: "bot", Conv: conv.ID, Ref: sentAck.ID, Cmid: "att-del"}); err != nil {
		t.Fatalf("service delete: %v", err)
	}
	// HEAD, not GET: a GET whose metadata read comes just before the
	// attachgc role's deletion streams bytes being deleted, and such a read
	// waits (up to the edge's 10 minutes) for chunks that are gone.
	testenv.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		req, _ := http.NewRequest(http.MethodHead, attURL, nil)
		req.Header.Set("Authorization", "Bearer "+atok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			return fmt.Errorf("attachment of the deleted message: %d", resp.StatusCode)
		}
		return nil
	})

	// Discovery (natter services) as an operator and as a service: every
	// micro service of the edge and the worker answers INFO and STATS on
	// one reply subject, several services per connection.
	for _, nc := range []*nats.Conn{admin, svc} {
		testenv.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
			list, err := discovery.List(ctxTimeout(t, 10*time.Second), nc, time.Second)
			if err != nil {
				return err
			}
			names := map[string]bool{}
			for _, in := range list {
				names[in.Name] = true
			}
			for _, want := range []string{subjects.ServiceEdge, subjects.ServiceName(node.RolePersist), subjects.ServiceName(node.RoleFanout), subjects.ServiceConversations, subjects.ServiceAPI} {
				if !names[want] {
					return fmt.Errorf("discovery lists %v, not %s", names, want)
				}
			}
			return nil
		})
	}

	// Each tier's credential is refused what the table denies it.
	var ev violations
	edgeNC := s.connect(t, natsauth.TierEdge, &ev)
	for _, subj := range []string{
		subjects.Event("message_created", conv.ID), subjects.DLQ("edge"), subjects.Ingest(conv.ID), subjects.DeliverGroups,
		subjects.MembersChanged(conv.ID), subjects.APIEndpoint("send"), subjects.KVSubject(subjects.BucketRevoked, subjects.BanKey("bob")),
		subjects.KVSubject(subjects.BucketSummaries, conv.ID), "$JS.API.DIRECT.GET.KV_" + subjects.BucketSummaries,
		"$JS.API.STREAM.DELETE." + subjects.StreamMsgs, "$JS.API.CONSUMER.MSG.NEXT." + subjects.StreamMsgs + "." + subjects.ConsumerPersist,
		subjects.AdminDisconnect, "$JS.API.STREAM.PURGE." + subjects.StreamMsgs,
	} {
		cannotPublish(t, edgeNC, &ev, subj)
	}
	// Nor read the other tiers' replies.
	for _, subj := range []string{subjects.MsgsAll, subjects.EventsAll, subjects.APIPrefix + ".>", subjects.ConvAPIPrefix + ".>",
		natsauth.InboxPrefix(natsauth.TierWorker) + ".>", natsauth.InboxPrefix(natsauth.TierService) + ".>"} {
		cannotSubscribe(t, edgeNC, &ev, subj)
	}
	// The SUMMARIES bucket through the JetStream API: the direct get is
	// dropped, so the read fails.
	kv, err := testenv.JetStream(t, edgeNC).KeyValue(ctxTimeout(t, 10*time.Second), subjects.BucketSummaries)
	if err != nil {
		t.Fatalf("edge: bucket info: %v", err)
	}
	if _, err := kv.Get(ctxTimeout(t, 3*time.Second), conv.ID); err == nil || errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("edge read SUMMARIES: %v", err)
	}
	var sv violations
	svcNC := s.connect(t, natsauth.TierService, &sv)
	for _, subj := range []string{subjects.Msg(conv.ID), subjects.Deliver("bob"), subjects.ConvEndpoint("get"), subjects.KVSubject(subjects.BucketCursors, "bob."+conv.ID)} {
		cannotPublish(t, svcNC, &sv, subj)
	}
	cannotSubscribe(t, svcNC, &sv, "im.dlv.>")
	var wv violations
	workerNC := s.connect(t, natsauth.TierWorker, &wv)
	for _, subj := range []string{subjects.Ingest(conv.ID), subjects.KVSubject(subjects.BucketPresence, subjects.PresenceOnKey("bob", "e1")), "$JS.API.STREAM.DELETE." + subjects.StreamMsgs} {
		cannotPublish(t, workerNC, &wv, subj)
	}
	for _, subj := range []string{subjects.MsgsAll, natsauth.InboxPrefix(natsauth.TierEdge) + ".>", natsauth.InboxPrefix(natsauth.TierService) + ".>"} {
		cannotSubscribe(t, workerNC, &wv, subj)
	}

	// No process of the mesh was refused anything.
	if strings.Contains(strings.ToLower(logs.String()), "permissions violation") {
		t.Fatalf("a natter process was refused by the permissions:\n%s", grepLines(logs.String(), "ermissions"))
	}
}

func mustAuth(t testing.TB, c node.Config) []nats.Option {
	t.Helper()
	o, err := node.NATSAuthOptions(c)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func cannotPublish(t testing.TB, nc *nats.Conn, v *violations, subject string) {
	t.Helper()
	if err := nc.Publish(subject, []byte("denied?")); err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	_ = nc.FlushTimeout(5 * time.Second)
	testenv.CheckFor(t, 5*time.Second, 2*time.Millisecond, func() error {
		if v.find("Publish", subject) == nil {
			return fmt.Errorf("no permissions violation for publish to %s", subject)
		}
		return nil
	})
}

func cannotSubscribe(t testing.TB, nc *nats.Conn, v *violations, subject string) {
	t.Helper()
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatalf("subscribe %s: %v", subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if _, err := sub.NextMsg(5 * time.Second); !errors.Is(err, nats.ErrPermissionViolation) {
		t.Fatalf("subscription to %s: %v, want a permissions violation", subject, err)
	}
}
