package node

import (
	"context"

	"github.com/natter-im/natter/internal/admin"
	"github.com/natter-im/natter/workers/push"
	"github.com/natter-im/natter/workers/retention"
	"github.com/natter-im/natter/workers/webhooks"
	"log/slog"
	"time"

	"github.com/natter-im/natter/jetstream/attachments/s3store"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/workers/fanout"
)

// Mode is what a process runs.
type Mode int

const (
	// ModeDev runs everything in one process, on embedded servers unless
	// URLs are configured.
	ModeDev Mode = iota
	// ModeEdge runs only the edge (WebSockets and REST).
	ModeEdge
	// ModeWorker runs the configured worker roles.
	ModeWorker
)

func (m Mode) String() string {
	switch m {
	case ModeDev:
		return "dev"
	case ModeEdge:
		return "edge"
	case ModeWorker:
		return "worker"
	}
	return "unknown"
}

// Worker roles.
const (
	RolePersist       = "persist"
	RoleFanout        = "fanout"
	RoleConversations = "conversations"
	// RoleEvents copies the log's entries into EVENTS as v1 message events
	// (docs/events.md, "Message events"): not a default role, run it only
	// for consumers that still read message events from EVENTS.
	RoleEvents = "events"
	// RoleIngest appends the sends published to im.ingest.<conv>.
	RoleIngest = "ingest"
	// RoleAPI serves the service API (natter.api.*).
	RoleAPI = "api"
	// RolePush sends push notifications to offline devices.
	RolePush = "push"
	// RoleThumbs makes the thumbnails of image attachments.
	RoleThumbs = "thumbs"
	// RoleAttachGC deletes the attachments of deleted messages and expired
	// uploads.
	RoleAttachGC = "attachgc"
)

// RoleEdge names the edge in discovery (natter-edge); it is not a worker
// role.
const RoleEdge = "edge"

// AllRoles are the default worker roles of natter dev and natter worker:
// every role but RoleEvents.
var AllRoles = []string{RoleConversations, RolePersist, RoleFanout, RoleIngest, RoleAPI, RoleThumbs, RoleAttachGC, RolePush}

// KnownRoles are the roles a process may run: AllRoles and RoleEvents.
var KnownRoles = append(append([]string(nil), AllRoles...), RoleEvents)

// Config of one process. Zero values take the documented defaults.
type Config struct {
	Mode    Mode
	Version string
	// DataDir holds the embedded servers' files (nats/, mongo/) and the dev
	// signing key. Empty means "./data". Only used by ModeDev.
	DataDir string

	// NATSURL of an external NATS cluster (comma-separated URLs). Empty in
	// ModeDev means: start an embedded nats-server. Required otherwise.
	NATSURL string
	// NATSCreds is a .creds file (JWT + nkey) for the external cluster.
	NATSCreds string
	// NATSNkey is an nkey seed file (the tier's user, jetstream/natsauth)
	// for the external cluster; not with NATSCreds.
	NATSNkey string
	// NATSTLSCA, NATSTLSCert, NATSTLSKey: TLS to the external cluster: the
	// CA file that verifies the servers (a server that requires TLS is
	// then reached over TLS with nats:// URLs too), and a client
	// certificate for servers that verify clients.
	NATSTLSCA, NATSTLSCert, NATSTLSKey string
	// NATSPort is the client port of the embedded nats-server. Zero means
	// 4222; -1 picks a free port.
	NATSPort int
	// SyncInterval is the embedded server's JetStream fsync interval. Zero
	// means nats-server's default (2m; writes are still acked after the
	// write reaches the OS).
	SyncInterval time.Duration

	// MongoURI of an external MongoDB (credentials and TLS options in the
	// URI). Empty in ModeDev means: start an embedded FerretDB. Required
	// for ModeWorker.
	MongoURI string
	// MongoDB is the database name. Empty means "natter".
	MongoDB string
	// MongoReadPreference for archived history reads. Empty means
	// "secondaryPreferred".
	MongoReadPreference string

	// HTTPAddr is where the edge (and in ModeDev everything) serves
	// WebSockets, REST, /healthz, /readyz and /metrics. Empty means
	// "127.0.0.1:8080"; port 0 picks a free port.
	HTTPAddr string
	// AdminAddr is where a worker process serves /healthz, /readyz and
	// /metrics. Empty means "127.0.0.1:9090"; port 0 picks a free port.
	AdminAddr string
	// Pprof serves the Go runtime profiles (net/http/pprof) under
	// /debug/pprof/ on the listener of /metrics (HTTPAddr, or AdminAddr for
	// a worker). False means off: /debug/pprof/ answers 404. natter dev
	// turns it on by default, natter edge and natter worker only with
	// --pprof (docs/config.md).
	Pprof bool
	// EdgeTLS serves HTTPAddr over TLS in ModeDev and ModeEdge, with the
	// certificate reloaded when its files change. The zero value serves
	// plain HTTP.
	EdgeTLS EdgeTLS

	// Roles run by ModeWorker (and ModeDev). Empty means AllRoles.
	Roles []string
	// Webhooks are the webhook endpoints delivered to by a process that runs
	// worker roles (each endpoint has its own durable consumer on EVENTS,
	// shared by every replica). Empty means no webhook delivery.
	Webhooks []webhooks.Endpoint

	// FanoutBroadcastMin is the member count from which the fan-out role
	// broadcasts a conversation's batches once to every edge
	// (im.dlv.grp.all, with the member list) instead of publishing them to
	// each member. Zero means 64 (fanout.DefaultBroadcastMin); negative
	// means never.
	FanoutBroadcastMin int
	// ReadPushInterval is the conversations role's coalescing of read
	// pushes per user and conversation (convsvc.Config.ReadPushInterval).
	// Zero means 250ms; negative pushes every read that moves a cursor.
	ReadPushInterval time.Duration

	// Push configures the push role's providers and rules. Its zero value
	// configures no provider: the role acknowledges every entry and sends
	// nothing.
	Push PushConfig

	// ServiceMaxBody is the largest message body the service API and the
	// ingest role accept, in bytes. Zero means Edge.MaxBody (64 KiB by
	// default).
	ServiceMaxBody int

	// AttachS3 keeps attachment bytes in S3-compatible storage (the edge's
	// uploads and downloads, the thumbs and attachgc roles). Its zero value
	// (no Endpoint) means the JetStream object store ATTACHBLOBS.
	AttachS3 s3store.Config
	// AttachExpiry is how long an upload no message carries is kept before
	// the attachgc role deletes it. Zero means 24h.
	AttachExpiry time.Duration

	// Retention configures the retention sweeper, which runs in the
	// persist role: the direct and group classes' policies (zero: keep
	// forever) and the sweep interval (zero: 1m). Its Logger is the
	// role's.
	Retention retention.Config

	// Streams sizes the JetStream definitions.
	Streams streams.Config
	// Edge configures the edge; see EdgeConfig.
	Edge EdgeConfig
	// Admin configures the admin API (token revocation, bans), served
	// beside /metrics. Its zero value serves it off (403 admin_disabled).
	Admin admin.Config
	// WebApp serves the chat web app (clients/web) at / of the edge. The
	// zero value serves none; natter dev turns it on unless --web-app=false,
	// natter edge only with --web-app. A dev node also answers POST
	// /dev/token (the app's sign-in) whenever Edge.Auth has an HS256 key;
	// other modes never do.
	WebApp bool

	// ShutdownTimeout bounds a graceful shutdown. Zero means 30s.
	ShutdownTimeout time.Duration
	// Faults inject failures for the chaos tests (natter reads them from
	// NATTER_FAULT, docs/config.md "Testing hooks"). The zero value injects
	// none.
	Faults Faults
	// Logger; nil means discard.
	Logger *slog.Logger
}

// PushConfig configures the push role (workers/push).
type PushConfig struct {
	// APNs, FCM and WebPush configure the providers; nil means that
	// provider is off (its devices get nothing).
	APNs    *push.APNsConfig
	FCM     *push.FCMConfig
	WebPush *push.WebPushConfig
	// Preview, SkipOnlineUsers and MaxAge: see push.Config (defaults:
	// false, false, 1h).
	Preview         bool
	SkipOnlineUsers bool
	MaxAge          time.Duration
	// Muted reports whether a user muted a conversation (push.Config.Muted).
	// Nil means the users' conversation settings: muted while muted_until
	// (conv.settings) is in the future.
	Muted func(ctx context.Context, conv, user string) (bool, error)
}

// Faults are the fault-injection hooks of the chaos tests (test/chaos).
// The zero value injects none.
type Faults struct {
	// PersistKillAfterWrite, when above zero, makes the persist role kill
	// its own process (SIGKILL) right after the Nth batch it wrote to
	// MongoDB, before acknowledging that batch.
	PersistKillAfterWrite int
	// PersistFailBody, when not empty, makes the persist role fail every
	// message whose body contains it, as a store error would: the message is
	// retried until MaxDeliver and then dead-lettered.
	PersistFailBody string
}

func (c Config) serviceMaxBody() int {
	if c.ServiceMaxBody > 0 {
		return c.ServiceMaxBody
	}
	return c.Edge.WithDefaults().MaxBody
}

func (c Config) withDefaults() Config {
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.NATSPort == 0 {
		c.NATSPort = 4222
	}
	if c.MongoDB == "" {
		c.MongoDB = "natter"
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8080"
	}
	if c.AdminAddr == "" {
		c.AdminAddr = "127.0.0.1:9090"
	}
	if len(c.Roles) == 0 {
		c.Roles = AllRoles
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Version == "" {
		c.Version = "0.0.0-dev"
	}
	return c
}

// fanoutOptions are the fan-out handler's options of c.
func (c Config) fanoutOptions() []fanout.Option {
	if c.FanoutBroadcastMin == 0 {
		return nil
	}
	return []fanout.Option{fanout.WithBroadcastMin(max(c.FanoutBroadcastMin, 0))}
}
