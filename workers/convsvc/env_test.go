package convsvc_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.mongodb.org/mongo-driver/event"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/natsembed"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/summaries"
	"github.com/natter-im/natter/workers/convsvc"
	"github.com/natter-im/natter/workers/store"
	"github.com/natter-im/natter/workers/store/storetest"
)

// env is one embedded NATS server, one embedded FerretDB with a store on
// it, a service instance on its own connection and a client on another.
type env struct {
	srv    *natsembed.Server
	dir    string // the NATS store dir, for restarts
	emb    *store.Embedded
	st     *store.Store
	svc    micro.Service
	cl     *convapi.Client
	nc     *nats.Conn // the client's connection
	svcCfg convsvc.Config
	sums   *summaries.Bucket // with envConfig.summaries
}

// ctxT is a context for one step of a test.
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	t.Cleanup(cancel)
	return ctx
}

// stepTimeout bounds one step; NATTER_BIG_TESTS raises it.
var stepTimeout = 20 * time.Second

type envConfig struct {
	svc        convsvc.Config
	maxPayload int32
	// clientTimeout of e.cl; zero means the client's default.
	clientTimeout time.Duration
	// monitor sees the store's commands (nil: none).
	monitor *event.CommandMonitor
	// summaries gives the service the SUMMARIES bucket (e.sums).
	summaries bool
	// direct opens e.st with the embedded store's SQLite directory
	// (store.Config.SQLiteDir), as natter dev does.
	direct bool
}

func newEnv(t testing.TB, cfg envConfig) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), svcCfg: cfg.svc}
	e.srv = testenv.StartNATS(t, testenv.WithStoreDir(e.dir), testenv.WithMaxPayload(cfg.maxPayload))
	e.emb = storetest.StartEmbedded(t, "")
	stc := store.Config{URI: e.emb.URI(), Monitor: cfg.monitor}
	if cfg.direct {
		stc.SQLiteDir = e.emb.SQLiteDir()
	}
	e.st = storetest.Open(t, stc)
	if cfg.summaries {
		nc := e.connect(t)
		js := testenv.JetStream(t, nc)
		if _, err := streams.Ensure(ctxT(t), js, streams.Config{}); err != nil {
			t.Fatal(err)
		}
		b, err := summaries.Open(ctxT(t), nc, js)
		if err != nil {
			t.Fatal(err)
		}
		e.sums, e.svcCfg.Summaries = b, b
	}
	e.svc = e.startService(t)
	e.nc = e.connect(t)
	e.cl = convapi.NewClient(e.nc, cfg.clientTimeout)
	return e
}

// connect opens a connection that reconnects quickly and forever.
func (e *env) connect(t testing.TB) *nats.Conn {
	t.Helper()
	return testenv.Connect(t, e.srv.ClientURL(), nats.ReconnectWait(20*time.Millisecond), nats.MaxReconnects(-1))
}

// startService starts one more service instance on its own connection.
func (e *env) startService(t testing.TB) micro.Service {
	t.Helper()
	svc, err := convsvc.Start(e.connect(t), e.st, e.svcCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	return svc
}

// restartNATS stops the server and starts it again on the same port and
// store dir; connections reconnect.
func (e *env) restartNATS(t testing.TB) {
	t.Helper()
	port := e.srv.Addr().(*net.TCPAddr).Port
	e.srv.Stop()
	e.srv = testenv.StartNATS(t, testenv.WithPort(port), testenv.WithStoreDir(e.dir))
}

var (
	uniq atomic.Int64
)

// names returns ids unique to this call: names("alice", "bob") -> alice7, bob7.
func names(base ...string) []string {
	n := uniq.Add(1)
	out := make([]string, len(base))
	for i, b := range base {
		out[i] = fmt.Sprintf("%s%d", b, n)
	}
	return out
}

// wantCode fails unless err is a *convapi.Error with code (or nil for "").
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("want success, got %v", err)
		}
		return
	}
	var se *convapi.Error
	if !errors.As(err, &se) {
		t.Fatalf("want %s, got %v", code, err)
	}
	if se.Code != code {
		t.Fatalf("want %s, got %s (%s)", code, se.Code, se.Msg)
	}
	if !errors.Is(err, &convapi.Error{Code: code}) {
		t.Fatalf("errors.Is(%v, sentinel %s) is false", err, code)
	}
}
