package node

import (
	"context"
	"errors"
	"fmt"
	"github.com/natter-im/natter/internal/admin"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/natter-im/natter/jetstream/natsauth"
	"github.com/natter-im/natter/jetstream/natsembed"
	"github.com/natter-im/natter/workers/store"
)

// validate checks every setting that can be checked without side effects.
func validate(c Config) error {
	if t := c.Admin.Token; t != "" && len(t) < admin.MinTokenLen {
		return settingErr(SettingAdminAuth, "the admin credential is %d bytes, want at least %d", len(t), admin.MinTokenLen)
	}
	for _, r := range c.Roles {
		switch r {
		case RolePersist, RoleFanout, RoleConversations, RoleEvents, RoleIngest, RoleAPI, RoleThumbs, RoleAttachGC, RolePush:
		default:
			return settingErr(SettingRoles, "unknown role %q (known: %s)", r, strings.Join(KnownRoles, ","))
		}
	}
	if c.NATSURL != "" {
		for _, u := range strings.Split(c.NATSURL, ",") {
			pu, err := url.Parse(strings.TrimSpace(u))
			if err != nil {
				return settingErr(SettingNATSURL, "malformed URL %q: %v", redactURL(u, true), errors.Unwrap(err))
			}
			switch pu.Scheme {
			case "nats", "tls", "ws", "wss":
			default:
				return settingErr(SettingNATSURL, "malformed URL %q: scheme must be nats, tls, ws or wss", redactURL(u, true))
			}
			if pu.Host == "" {
				return settingErr(SettingNATSURL, "malformed URL %q: no host", redactURL(u, true))
			}
		}
	} else if c.Mode != ModeDev {
		return settingErr(SettingNATSURL, "required for natter %s", c.Mode)
	}
	if c.MongoURI != "" {
		if err := options.Client().ApplyURI(c.MongoURI).Validate(); err != nil {
			return settingErr(SettingMongoURI, "malformed URI: %v", err)
		}
	} else if c.Mode == ModeWorker && needsStore(c.Roles) {
		return settingErr(SettingMongoURI, "required for natter worker with roles %s", strings.Join(c.Roles, ","))
	}
	if c.Mode == ModeDev && c.NATSURL == "" && (c.NATSPort < -1 || c.NATSPort > 65535) {
		return settingErr(SettingNATSPort, "port %d out of range", c.NATSPort)
	}
	return nil
}

func needsStore(roles []string) bool {
	for _, r := range roles {
		if r == RolePersist || r == RoleConversations {
			return true
		}
	}
	return false
}

func listen(setting, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, settingErr(setting, "%v", err)
	}
	return ln, nil
}

// startEmbeddedNATS runs nats-server under <data>/nats.
func startEmbeddedNATS(c Config) (*natsembed.Server, error) {
	port := c.NATSPort
	if port > 0 {
		// nats-server does not report a busy port to an embedder; probe it.
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return nil, settingErr(SettingNATSPort, "%v", err)
		}
		_ = ln.Close()
	}
	s, err := natsembed.Start(natsembed.Config{
		Port:         port,
		StoreDir:     filepath.Join(c.DataDir, "nats"),
		SyncInterval: c.SyncInterval,
	})
	if err != nil {
		return nil, settingErr(SettingData, "%v", err)
	}
	return s, nil
}

func startEmbeddedStore(ctx context.Context, c Config) (*store.Embedded, error) {
	e, err := store.StartEmbedded(ctx, filepath.Join(c.DataDir, "mongo"), c.Logger.With("component", "ferretdb"))
	if err != nil {
		return nil, settingErr(SettingData, "%v", err)
	}
	return e, nil
}

// A NATS server that stops answering without closing the connection (a
// frozen process, a half-open TCP connection) is given up when a ping is due
// while natsMaxPingsOut are unanswered, natsPingInterval apart: 4-6 s after
// it froze, before the Raft groups it led have new leaders (4-9 s), where
// the client's defaults (2 minutes, 2 outstanding) leave an edge or worker
// stuck on a frozen node for minutes. The connection then moves to another
// node of the cluster.
const (
	natsPingInterval = 2 * time.Second
	natsMaxPingsOut  = 2
)

func connectNATS(c Config, url, name string) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.Timeout(5 * time.Second),
		nats.PingInterval(natsPingInterval),
		nats.MaxPingsOutstanding(natsMaxPingsOut),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.ReconnectBufSize(64 << 20),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				c.Logger.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { c.Logger.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			c.Logger.Warn("nats async error", "subject", subj, "err", err)
		}),
	}
	auth, err := NATSAuthOptions(c)
	if err != nil {
		return nil, err
	}
	if p := inboxPrefix(c.Mode); p != "" {
		opts = append(opts, nats.CustomInboxPrefix(p))
	}
	nc, err := nats.Connect(url, append(opts, auth...)...)
	if err != nil {
		setting := SettingNATSURL
		if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) {
			setting = SettingNATSCreds
			if c.NATSNkey != "" {
				setting = SettingNATSNkey
			}
		}
		return nil, settingErr(setting, "cannot connect to %s: %v", RedactNATSURL(url), err)
	}
	return nc, nil
}

// inboxPrefix is the reply-subject prefix of mode's tier
// (natsauth.InboxPrefix): edges and workers read only their own replies
// under per-tier NATS credentials. Empty (the _INBOX default) for dev.
func inboxPrefix(m Mode) string {
	switch m {
	case ModeEdge:
		return natsauth.InboxPrefix(natsauth.TierEdge)
	case ModeWorker:
		return natsauth.InboxPrefix(natsauth.TierWorker)
	}
	return ""
}

// NATSAuthOptions are the nats.go options of c's credential (a .creds
// file or an nkey seed file) and TLS settings.
func NATSAuthOptions(c Config) ([]nats.Option, error) {
	var opts []nats.Option
	if c.NATSCreds != "" && c.NATSNkey != "" {
		return nil, settingErr(SettingNATSNkey, "give either --nats-creds or --nats-nkey, not both")
	}
	if c.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(c.NATSCreds))
	}
	if c.NATSNkey != "" {
		o, err := nats.NkeyOptionFromSeed(c.NATSNkey)
		if err != nil {
			return nil, settingErr(SettingNATSNkey, "%v", err)
		}
		opts = append(opts, o)
	}
	if c.NATSTLSCA != "" {
		opts = append(opts, nats.RootCAs(c.NATSTLSCA))
	}
	if c.NATSTLSCert != "" || c.NATSTLSKey != "" {
		opts = append(opts, nats.ClientCert(c.NATSTLSCert, c.NATSTLSKey))
	}
	return opts, nil
}

// openStore opens the store on uri; sqliteDir is the embedded store's
// directory when this process runs it (store.Config.SQLiteDir), else empty.
func openStore(ctx context.Context, c Config, uri, sqliteDir string) (*store.Store, error) {
	st, err := store.Open(ctx, store.Config{URI: uri, Database: c.MongoDB, HistoryReadPreference: c.MongoReadPreference, SQLiteDir: sqliteDir})
	if err != nil {
		return nil, settingErr(SettingMongoURI, "%v", err)
	}
	return st, nil
}

// readyCheck reports the first failing dependency.
type readyCheck func(ctx context.Context) error

func natsReady(nc *nats.Conn) readyCheck {
	return func(ctx context.Context) error {
		if !nc.IsConnected() {
			return fmt.Errorf("nats: %s", nc.Status())
		}
		return nil
	}
}
