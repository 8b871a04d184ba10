package node

import (
	"context"
	"errors"
	"fmt"
	"github.com/natter-im/natter/jetstream/actions"
	"github.com/natter-im/natter/jetstream/blocks"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/cursors"
	"github.com/natter-im/natter/jetstream/summaries"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/clients/web"
	"github.com/natter-im/natter/edge"
	"github.com/natter-im/natter/edge/auth"
	"github.com/natter-im/natter/edge/revoke"
	"github.com/natter-im/natter/jetstream/msglog"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/convsvc"
	"github.com/natter-im/natter/workers/discovery"
	"github.com/natter-im/natter/workers/events"
	"github.com/natter-im/natter/workers/fanout"
	"github.com/natter-im/natter/workers/ingest"
	"github.com/natter-im/natter/workers/persist"
	"github.com/natter-im/natter/workers/runner"
	"github.com/natter-im/natter/workers/svcapi"
	"github.com/natter-im/natter/workers/webhooks"
)

// EdgeConfig configures the edge of natter dev and natter edge.
type EdgeConfig = edge.Config

type stopFunc func(ctx context.Context) error

func (f stopFunc) Stop(ctx context.Context) error { return f(ctx) }

// startRoles starts the configured worker roles. Each role's runner shares
// the role's durable consumer with every other replica; each role registers
// in discovery (natter-<role>).
func (n *Node) startRoles(ctx context.Context) error {
	for _, role := range n.cfg.Roles {
		lg := n.log.With("role", role)
		switch role {
		case RoleConversations:
			cur, err := cursors.Open(ctx, n.nc, n.js)
			if err != nil {
				return fmt.Errorf("node: conversations service: %w", err)
			}
			sums, err := summaries.Open(ctx, n.nc, n.js)
			if err != nil {
				return fmt.Errorf("node: conversations service: %w", err)
			}
			blk, err := blocks.Open(ctx, n.js)
			if err != nil {
				return fmt.Errorf("node: conversations service: %w", err)
			}
			svc, err := convsvc.Start(n.nc, n.store, convsvc.Config{
				Version: n.cfg.Version, Logger: lg, Metadata: n.metadata(role),
				Events: events.NewPublisher(n.js), ReadPushInterval: n.cfg.ReadPushInterval,
				Cursors: cur, Summaries: sums, Blocks: blk,
			})
			if err != nil {
				return fmt.Errorf("node: conversations service: %w", err)
			}
			n.workers = append(n.workers, stopFunc(func(context.Context) error { return svc.Stop() }))
		case RoleAPI:
			mlog, err := n.msgLog(ctx)
			if err != nil {
				return err
			}
			members, err := n.memberCache(ctx)
			if err != nil {
				return err
			}
			frozen, err := n.frozenView(ctx)
			if err != nil {
				return err
			}
			svc, err := svcapi.Start(svcapi.Deps{NC: n.nc, Log: mlog, Convs: convapi.NewClient(n.nc, 0), Members: members, Frozen: frozen.Frozen},
				svcapi.Config{Version: n.cfg.Version, MaxBody: n.cfg.serviceMaxBody(), Metadata: n.metadata(role), Logger: lg})
			if err != nil {
				return fmt.Errorf("node: service API: %w", err)
			}
			n.workers = append(n.workers, stopFunc(func(context.Context) error { return svc.Stop() }))
		case RolePersist:
			mlog, err := n.msgLog(ctx)
			if err != nil {
				return err
			}
			// The role raises each sender's cursor once per batch: with the
			// revision cache that is a write, not a read and a write.
			cur, err := cursors.Open(ctx, n.nc, n.js, cursors.WithRevisionCache(persistCursorCache))
			if err != nil {
				return fmt.Errorf("node: persist: %w", err)
			}
			acts, err := actions.Open(ctx, n.nc, n.js)
			if err != nil {
				return fmt.Errorf("node: persist: %w", err)
			}
			drop, err := n.attachmentDrop(ctx, lg)
			if err != nil {
				return err
			}
			popts := append(persistFaults(n.cfg.Faults, lg), persist.WithCursors(cur), persist.WithActions(acts), persist.WithAttachmentDrop(drop))
			if err := n.startRunner(ctx, lingering(persistRunner(n.runnerConfig(role, subjects.StreamMsgs, subjects.ConsumerPersist, persistBatch, 2)), nil), persist.New(n.store, mlog, lg, popts...),
				"archives the message log into MongoDB"); err != nil {
				return err
			}
			if err := n.startRetention(ctx, lg); err != nil {
				return err
			}
		case RoleFanout:
			members, err := n.memberCache(ctx)
			if err != nil {
				return err
			}
			pub, err := n.bulkConn("fanout")
			if err != nil {
				return err
			}
			if err := n.startRunner(ctx, lingering(n.runnerConfig(role, subjects.StreamMsgs, subjects.ConsumerFanout, 64, 1), groupMsg), fanout.New(pub, members, lg, n.cfg.fanoutOptions()...),
				"delivers each logged message to its members' devices"); err != nil {
				return err
			}
		case RoleEvents:
			ch, err := streams.EnsureConsumer(ctx, n.js, subjects.StreamMsgs, streams.EventsCopyConsumer(n.cfg.Streams))
			if err != nil {
				return fmt.Errorf("node: events: %w", err)
			}
			if ch != nil {
				lg.Info("events role: consumer "+ch.Action, "consumer", ch.Name)
			}
			if err := n.startRunner(ctx, lingering(n.runnerConfig(role, subjects.StreamMsgs, subjects.ConsumerEvents, 256, 1), nil), events.NewHandler(n.js, lg),
				"copies the log into EVENTS as v1 message events (message_created, message_edited, message_deleted)"); err != nil {
				return err
			}
		case RolePush:
			if err := n.startPush(ctx, lg); err != nil {
				return err
			}
		case RoleThumbs, RoleAttachGC:
			if err := n.startAttachRole(ctx, role, lg); err != nil {
				return err
			}
		case RoleIngest:
			mlog, err := n.msgLog(ctx)
			if err != nil {
				return err
			}
			frozen, err := n.frozenView(ctx)
			if err != nil {
				return err
			}
			members, err := n.memberCache(ctx)
			if err != nil {
				return err
			}
			if err := n.startRunner(ctx, n.runnerConfig(role, subjects.StreamIngest, subjects.ConsumerIngest, 64, 1),
				ingest.New(mlog, members, ingest.Config{MaxBody: n.cfg.serviceMaxBody(), Logger: lg, Frozen: frozen.Frozen}),
				"appends fire-and-forget sends from the ingest subjects to the log"); err != nil {
				return err
			}
		}
	}
	if len(n.cfg.Webhooks) > 0 {
		svc, err := webhooks.Start(ctx, n.js, webhooks.Config{Endpoints: n.cfg.Webhooks, Logger: n.log.With("role", "webhooks"), Registerer: n.reg})
		if err != nil {
			return &SettingError{Setting: SettingWebhooks, Err: err}
		}
		n.workers = append(n.workers, svc)
	}
	return nil
}

// persistCursorCache is how many senders' read cursors (a key per sender
// and conversation) the persist role remembers the revision of (about 150
// bytes each).
const persistCursorCache = 65_536

// runnerConfig is the runner configuration of role on stream's durable
// consumer, with this process's logger and metrics registry.
func (n *Node) runnerConfig(role, stream, consumer string, batch, concurrency int) runner.Config {
	return runner.Config{Role: role, Stream: stream, Consumer: consumer,
		BatchSize: batch, Concurrency: concurrency, Logger: n.log, Registerer: n.reg}
}

// persistBatch is the persist role's batch: under a backlog each batch is
// one InsertMany (on the embedded store in commands of 256, store.insertNew)
// and one read-cursor write per (sender, conversation) in it, so batches
// of 1,024 instead of 256 write a quarter as many cursors: the raise (the
// KV_CURSORS store, the client loops, the persist side) went from ~14 to
// 5-6 us per stored message in the drain's profile, 66-71 to ~52 us in
// all (docs/benchmarks.md "Cost per message: persist"). At low rates the 20 ms linger makes a batch whatever
// arrived. persistPull is the pull buffer: one batch, not the default
// two per loop, so a replica holds about 4,100 messages at most (the
// queue, the client's pull, the 2 batches in its handler).
const (
	persistBatch = 1024
	persistPull  = persistBatch
)

func persistRunner(cfg runner.Config) runner.Config {
	cfg.PullMax = persistPull
	return cfg
}

// linger is how long the persist and events roles wait to fill a batch
// (their cost is largely per call: a store insert, a round trip per batch,
// and nobody waits on them message by message), and how long the fan-out
// role waits while its batch holds only groups' messages: a group's entries
// that arrive together go to each member in one delivery message and one
// socket write (docs/benchmarks.md, fanout fix 9). The fan-out never holds
// a direct conversation's message: one that starts a batch or arrives
// during the wait has it handled at once.
const linger = 20 * time.Millisecond

// lingering returns cfg with the linger, on the messages on accepts (nil:
// every message).
func lingering(cfg runner.Config, on func(jetstream.Msg) bool) runner.Config {
	cfg.Linger, cfg.LingerOn = linger, on
	return cfg
}

// groupMsg reports whether m is a log entry of a group.
func groupMsg(m jetstream.Msg) bool { return natter.IsGroupID(subjects.ConvFromMsg(m.Subject())) }

// consumerJS returns the JetStream context the roles' runners consume on:
// a connection of their own (natter-<mode>-consumers), made with the first
// runner. The consumers' batches (up to 256 log entries each for persist
// and events) would otherwise queue on the node's connection in front of
// the replies that requests and appends wait for: in natter dev, the
// edge's sends' JetStream acks (docs/benchmarks.md, relay fix 12).
func (n *Node) consumerJS() (jetstream.JetStream, error) {
	if n.cjs != nil {
		return n.cjs, nil
	}
	nc, err := n.bulkConn("consumers")
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream on %s: %w", nc.Opts.Name, err)
	}
	n.cjs = js
	return js, nil
}

// startRunner starts a role's runner and registers it in discovery with the
// runner's stats; the runner's Ready joins the readiness checks. At shutdown
// the runner drains first, then the registration goes.
func (n *Node) startRunner(ctx context.Context, cfg runner.Config, h runner.Handler, what string) error {
	js, err := n.consumerJS()
	if err != nil {
		return fmt.Errorf("node: %s: %w", cfg.Role, err)
	}
	r, err := runner.New(js, cfg, h)
	if err != nil {
		return fmt.Errorf("node: %s: %w", cfg.Role, err)
	}
	if err := r.Start(ctx); err != nil {
		return fmt.Errorf("node: %s: %w", cfg.Role, err)
	}
	svc, err := n.register(cfg.Role, "natter "+cfg.Role+" worker: "+what, func() any { return r.Stats() })
	if err != nil {
		_ = r.Stop(ctx)
		return err
	}
	n.workers = append(n.workers, stopFunc(func(ctx context.Context) error {
		err := r.Stop(ctx)
		if serr := svc.Stop(); err == nil {
			err = serr
		}
		return err
	}))
	// Not ready while the role has no consumer (deleted, not yet recreated).
	n.checks = append(n.checks, func(context.Context) error { return r.Ready() })
	return nil
}

// register adds the discovery service of role.
func (n *Node) register(role, description string, stats func() any) (micro.Service, error) {
	svc, err := discovery.Register(n.nc, discovery.Config{
		Role: role, Version: n.cfg.Version, Description: description,
		Metadata: n.metadata(role), Stats: stats, Logger: n.log,
	})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return svc, nil
}

// metadata annotates a role's service in discovery: where it runs.
func (n *Node) metadata(role string) map[string]string {
	host, _ := os.Hostname()
	return map[string]string{
		"role": role,
		"mode": n.cfg.Mode.String(),
		"host": host,
		"pid":  strconv.Itoa(os.Getpid()),
		"addr": n.ln.Addr().String(),
	}
}

// msgLog returns the node's one message log (one per process: its
// per-conversation locks serialise this process's appends).
func (n *Node) msgLog(ctx context.Context) (*msglog.Log, error) {
	if n.mlog == nil {
		// The archive answers the retry check for archived messages
		// (the conversations service's message op over NATS: the log
		// needs no MongoDB).
		l, err := msglog.New(ctx, n.nc, n.js, msglog.Config{Logger: n.log.With("component", "msglog"), Archive: convapi.NewClient(n.nc, 0)})
		if err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		n.mlog = l
	}
	return n.mlog, nil
}

// frozenView returns the node's copy of the REVOKED bucket, for the freeze
// checks of the api and ingest roles (an admin API freeze), stopped at
// shutdown.
func (n *Node) frozenView(ctx context.Context) (*revoke.View, error) {
	if n.frozen == nil {
		kv, err := n.js.KeyValue(ctx, subjects.BucketRevoked)
		if err == nil {
			n.frozen, err = revoke.Watch(ctx, kv, n.log.With("component", "frozen"), nil)
		}
		if err != nil {
			return nil, fmt.Errorf("node: revocations bucket: %w", err)
		}
		v := n.frozen
		n.workers = append(n.workers, stopFunc(func(context.Context) error { v.Stop(); return nil }))
	}
	return n.frozen, nil
}

// memberCache returns the node's membership cache, closed at shutdown.
func (n *Node) memberCache(ctx context.Context) (*convapi.MemberCache, error) {
	if n.members == nil {
		m, err := convapi.NewMemberCache(ctx, n.nc, convapi.NewClient(n.nc, 0), 0, 0)
		if err != nil {
			return nil, fmt.Errorf("node: member cache: %w", err)
		}
		n.members = m
		n.workers = append(n.workers, stopFunc(func(context.Context) error { return m.Close() }))
	}
	return n.members, nil
}

// edgeRequestConns is how many NATS connections an edge's requests to
// the conversations service are spread over.
const edgeRequestConns = 4

// startEdge builds the edge, registers its routes and its discovery service
// (natter-edge, with the edge's counters as stats).
func (n *Node) startEdge(ctx context.Context) error {
	mlog, err := n.msgLog(ctx)
	if err != nil {
		return err
	}
	// The edge's requests to the conversations service go over
	// connections of their own (a reconnect storm's syncs and presence
	// checks queued on the lock of the node's one connection).
	reqs := make([]*nats.Conn, edgeRequestConns)
	for i := range reqs {
		if reqs[i], err = n.bulkConn(fmt.Sprintf("requests-%d", i)); err != nil {
			return err
		}
	}
	client := convapi.NewPoolClient(reqs, 0)
	members, err := convapi.NewMemberCache(ctx, n.nc, client, 0, 0)
	if err != nil {
		return fmt.Errorf("node: member cache: %w", err)
	}
	dlv, err := n.bulkConn("deliveries")
	if err != nil {
		members.Close()
		return err
	}
	cfg := n.cfg.Edge
	cfg.Logger = n.log.With("component", "edge")
	if n.cfg.WebApp {
		cfg.App = web.FS()
	}
	if n.cfg.Mode == ModeDev {
		if cfg.DevTokens = devTokenKey(cfg.Auth); cfg.DevTokens == nil {
			n.log.Warn("no dev token endpoint: the edge has no HS256 key to sign with (" + edge.DevTokenPath + " is off)")
		}
	}
	att, err := n.attachStore(ctx)
	if err != nil {
		members.Close()
		return err
	}
	e, err := edge.New(context.WithoutCancel(ctx), cfg, edge.Deps{NC: n.nc, DeliverNC: dlv, JS: n.js, Log: mlog, Convs: client, Members: members, Attach: att, Registerer: n.reg})
	if err != nil {
		members.Close()
		if errors.Is(err, edge.ErrAuthSettings) {
			return &SettingError{Setting: SettingAuth, Err: err}
		}
		return fmt.Errorf("node: %w", err)
	}
	svc, err := n.register(RoleEdge, "natter edge: client WebSockets and REST", func() any { return gatherStats(n.reg, "natter_edge_") })
	if err != nil {
		members.Close()
		return err
	}
	e.Register(n.app)
	n.edge = stopFunc(func(ctx context.Context) error {
		err := e.Stop(ctx)
		members.Close()
		if serr := svc.Stop(); err == nil {
			err = serr
		}
		return err
	})
	return nil
}

// devTokenKey is the key natter dev's token endpoint signs with: the first
// HS256 key of the edge's verifier (the dev signing key unless token flags
// name others); nil when it has none.
func devTokenKey(a auth.Config) *auth.Key {
	for _, k := range a.Keys {
		if k.Alg == auth.AlgHS256 {
			return &k
		}
	}
	return nil
}

// persistFaults turns the chaos tests' fault settings into persist options.
func persistFaults(f Faults, lg *slog.Logger) []persist.Option {
	var pf persist.Faults
	if n := f.PersistKillAfterWrite; n > 0 {
		pf.AfterWrite = func(written int, batch []natter.Message) {
			if written != n {
				return
			}
			first, last := batch[0], batch[len(batch)-1]
			lg.Warn("fault injection: killing this process after a batch write, before its acks (testing hook)",
				"batch", written, "n", len(batch), "first", first.Conv+":"+strconv.FormatUint(first.Seq, 10), "last", last.Conv+":"+strconv.FormatUint(last.Seq, 10))
			if self, err := os.FindProcess(os.Getpid()); err == nil {
				_ = self.Kill() // SIGKILL: no deferred code, no drain
			}
			select {} // the signal is on its way
		}
	}
	if body := f.PersistFailBody; body != "" {
		pf.Fail = func(m natter.Message) bool { return strings.Contains(m.Body, body) }
	}
	if pf.AfterWrite == nil && pf.Fail == nil {
		return nil
	}
	lg.Warn("fault injection on (testing hook)", "persist_kill_after_write", f.PersistKillAfterWrite, "persist_fail_body", f.PersistFailBody)
	return []persist.Option{persist.WithFaults(pf)}
}
