package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/natter-im/natter/edge"
	"github.com/natter-im/natter/edge/auth"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/cli"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/jetstream/subjects"
)

// secretKeyID is the key id (kid) of the one HS256 secret an edge is given
// without an id: --jwt-secret, --jwt-secret-file, or the dev signing key
// natter dev creates. Keys of --jwt-keys and JWKS have the ids given there.
// natter token signs with the same keys, so its tokens carry the kid the
// edge looks up (docs/config.md, "Tokens").
const secretKeyID = "default"

// edgeFlags configure the edge of natter dev and natter edge.
type edgeFlags struct {
	maxBody, burst, sendQueue       int
	sendWindow                      int
	rate                            float64
	restRate                        float64
	restBurst                       int
	origins                         string
	pingInterval, authTimeout, lame time.Duration
	requestReadTimeout              time.Duration
	edgeID                          string
	presenceLease                   time.Duration
	editWindow, deleteWindow        time.Duration
	typingRate                      float64
	typingBurst, typingMaxMembers   int
	webApp                          bool
	authFlags
	limits limitsFlags
}

// authFlags configure token verification (edge) and minting (token).
type authFlags struct {
	secret, secretFile, keys, jwksFile, jwksURL, issuer, audience string
	dev                                                           bool
	data                                                          *string
	// listen is the edge's listen address (natter dev: the dev signing
	// key is refused on a non-loopback one); "" for natter token.
	listen string
}

func (a *authFlags) register(fs *cli.FlagSet) {
	fs.String(&a.secret, "jwt-secret", "NATTER_JWT_SECRET", "", "HS256 secret (>= 32 bytes) of key id \"default\"; prefer the environment or --jwt-secret-file")
	fs.String(&a.secretFile, "jwt-secret-file", "NATTER_JWT_SECRET_FILE", "", "file holding the HS256 secret of key id \"default\"")
	fs.String(&a.keys, "jwt-keys", "NATTER_JWT_KEYS", "", "verification keys as kid:alg:file,... (alg HS256, RS256 or EdDSA; PEM public key or secret file)")
	fs.String(&a.jwksFile, "jwks-file", "NATTER_JWKS_FILE", "", "JWKS file of verification keys")
	fs.String(&a.jwksURL, "jwks-url", "NATTER_JWKS_URL", "", "JWKS URL of verification keys, refreshed every 5m")
	fs.String(&a.issuer, "jwt-issuer", "NATTER_JWT_ISSUER", "", "required iss claim (empty = not checked)")
	fs.String(&a.audience, "jwt-audience", "NATTER_JWT_AUDIENCE", "", "required aud claim (empty = not checked)")
}

// config builds the verifier config. In dev mode with no keys configured it
// uses (creating it if needed) the dev signing key under the data dir.
func (a *authFlags) config() (auth.Config, error) {
	cfg := auth.Config{JWKSFile: a.jwksFile, JWKSURL: a.jwksURL, Issuer: a.issuer, Audience: a.audience}
	bad := func(err error) error { return &node.SettingError{Setting: node.SettingAuth, Err: err} }
	if a.secretFile != "" {
		k, err := auth.LoadKeyFile(secretKeyID, auth.AlgHS256, a.secretFile)
		if err != nil {
			return cfg, bad(err)
		}
		cfg.Keys = append(cfg.Keys, k)
	} else if a.secret != "" {
		cfg.Keys = append(cfg.Keys, auth.Key{ID: secretKeyID, Alg: auth.AlgHS256, Secret: []byte(a.secret)})
	}
	for _, spec := range cli.SplitList(a.keys) {
		parts := strings.SplitN(spec, ":", 3)
		if len(parts) != 3 {
			return cfg, bad(fmt.Errorf("key %q is not kid:alg:file", spec))
		}
		k, err := auth.LoadKeyFile(parts[0], parts[1], parts[2])
		if err != nil {
			return cfg, bad(err)
		}
		cfg.Keys = append(cfg.Keys, k)
	}
	if len(cfg.Keys) == 0 && cfg.JWKSFile == "" && cfg.JWKSURL == "" {
		if !a.dev {
			return cfg, bad(errors.New("no verification key: set --jwt-secret-file, --jwt-keys, --jwks-file or --jwks-url"))
		}
		if a.listen != "" && !loopback(a.listen) {
			return cfg, bad(fmt.Errorf("natter dev on the non-loopback address %s needs explicit secrets: set --jwt-secret-file (or --jwt-keys, --jwks-file, --jwks-url); the generated dev signing key is for loopback only", a.listen))
		}
		k, err := devKey(*a.data)
		if err != nil {
			return cfg, &node.SettingError{Setting: node.SettingData, Err: err}
		}
		cfg.Keys = append(cfg.Keys, k)
	}
	return cfg, nil
}

// loopback reports whether the listen address addr takes connections from
// this machine only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// devKey reads or creates <data>/dev-jwt-secret (mode 0600).
func devKey(data string) (auth.Key, error) {
	path := filepath.Join(data, "dev-jwt-secret")
	secret, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(data, 0o755); err != nil {
			return auth.Key{}, fmt.Errorf("create data dir: %w", err)
		}
		buf := make([]byte, 32)
		_, _ = rand.Read(buf)
		secret = []byte(hex.EncodeToString(buf))
		if err := os.WriteFile(path, secret, 0o600); err != nil {
			return auth.Key{}, fmt.Errorf("write dev signing key: %w", err)
		}
	} else if err != nil {
		return auth.Key{}, fmt.Errorf("read dev signing key: %w", err)
	}
	return auth.Key{ID: secretKeyID, Alg: auth.AlgHS256, Secret: []byte(strings.TrimSpace(string(secret)))}, nil
}

func (e *edgeFlags) register(fs *cli.FlagSet, mode node.Mode) {
	fs.Int(&e.maxBody, "max-body", "NATTER_MAX_BODY", protocol.DefaultMaxBody, "largest client frame or REST body in bytes", cli.Min(1))
	fs.String(&e.origins, "origins", "NATTER_ORIGINS", "", "allowed browser Origins, comma-separated (empty = none; \"*\" = any)")
	fs.Float(&e.rate, "rate", "NATTER_RATE", protocol.DefaultRate, "requests per second per connection (token bucket refill)", cli.Positive[float64]())
	fs.Int(&e.burst, "burst", "NATTER_BURST", protocol.DefaultBurst, "token bucket size per connection", cli.Min(1))
	fs.Float(&e.restRate, "rest-rate", "NATTER_REST_RATE", protocol.DefaultRate, "REST requests per second per user over all edges (token bucket refill)", cli.Positive[float64]())
	fs.Int(&e.restBurst, "rest-burst", "NATTER_REST_BURST", protocol.DefaultBurst, "REST token bucket size per user", cli.Min(1))
	fs.Int(&e.sendQueue, "send-queue", "NATTER_SEND_QUEUE", 512, "queued outgoing frames per socket before it is closed as a slow consumer", cli.Min(1))
	fs.Int(&e.sendWindow, "send-window", "NATTER_SEND_WINDOW", 16, "sends of one connection in flight at once (pipelined); 1 = one at a time", cli.Min(1))
	fs.Duration(&e.pingInterval, "ping-interval", "NATTER_PING_INTERVAL", protocol.DefaultPingInterval, "server ping interval; silent connections are closed after twice this", cli.Positive[time.Duration]())
	fs.Duration(&e.authTimeout, "auth-timeout", "NATTER_AUTH_TIMEOUT", protocol.DefaultAuthTimeout, "wait for the auth frame of a browser client", cli.Positive[time.Duration]())
	fs.Duration(&e.requestReadTimeout, "request-read-timeout", "NATTER_REQUEST_READ_TIMEOUT", 10*time.Second, "a socket that has not sent its whole HTTP request (or WebSocket upgrade) within this is closed; also the keep-alive idle bound", cli.Positive[time.Duration]())
	fs.Duration(&e.lame, "lame-duck", "NATTER_LAME_DUCK", 5*time.Second, "interval over which a stopping edge closes its sockets", cli.Positive[time.Duration]())
	fs.String(&e.edgeID, "edge-id", "NATTER_EDGE_ID", "", "this edge's id in the presence leases, 1-64 of [A-Za-z0-9_-] (empty = random per process)")
	fs.Duration(&e.presenceLease, "presence-lease", "NATTER_PRESENCE_LEASE", 30*time.Second, "TTL of an online lease; a killed edge's users go offline within it", cli.Between(3*time.Second, time.Hour))
	fs.Float(&e.typingRate, "typing-rate", "NATTER_TYPING_RATE", 1, "typing frames per second per connection and conversation (token bucket refill)", cli.Positive[float64]())
	fs.Int(&e.typingBurst, "typing-burst", "NATTER_TYPING_BURST", 3, "typing token bucket size per connection and conversation", cli.Min(1))
	fs.Int(&e.typingMaxMembers, "typing-max-members", "NATTER_TYPING_MAX_MEMBERS", 1000, "largest conversation with typing signals (larger: forbidden)", cli.Between(2, 100_000))
	fs.Duration(&e.editWindow, "edit-window", "NATTER_EDIT_WINDOW", 48*time.Hour, "how long after sending a message its sender may edit it (msg.edit)", cli.Positive[time.Duration]())
	fs.Duration(&e.deleteWindow, "delete-window", "NATTER_DELETE_WINDOW", 24*time.Hour, "how long after sending a message its sender may delete (recall) it; group admins have no window", cli.Positive[time.Duration]())
	if mode == node.ModeDev {
		fs.Bool(&e.webApp, "web-app", "NATTER_WEB_APP", true, "serve the chat web app at / (natter dev answers POST "+edge.DevTokenPath+", its sign-in, either way)")
	} else {
		fs.Bool(&e.webApp, "web-app", "NATTER_WEB_APP", false, "serve the chat web app at / (it signs in with tokens of your identity provider)")
	}
	e.authFlags.register(fs)
	e.limits.register(fs)
	e.dev = mode == node.ModeDev
}

func (e *edgeFlags) apply(cfg *node.Config) error {
	ac := &e.authFlags
	ac.data = &cfg.DataDir
	ac.listen = cfg.HTTPAddr
	if cfg.DataDir == "" {
		d := "./data"
		ac.data = &d
	}
	a, err := ac.config()
	if err != nil {
		return err
	}
	cfg.Edge.Auth = a
	cfg.Edge.MaxBody = e.maxBody
	cfg.Edge.Origins = cli.SplitList(e.origins)
	cfg.Edge.Rate = e.rate
	cfg.Edge.Burst = e.burst
	cfg.Edge.RESTRate = e.restRate
	cfg.Edge.RESTBurst = e.restBurst
	cfg.Edge.SendQueue = e.sendQueue
	cfg.Edge.SendWindow = e.sendWindow
	cfg.Edge.PingInterval = e.pingInterval
	cfg.Edge.AuthTimeout = e.authTimeout
	cfg.Edge.RequestReadTimeout = e.requestReadTimeout
	cfg.Edge.LameDuck = e.lame
	if e.edgeID != "" && subjects.ValidID(e.edgeID) != nil {
		return &node.SettingError{Setting: "--edge-id (NATTER_EDGE_ID)", Err: fmt.Errorf("%q: want 1-64 characters of [A-Za-z0-9_-]", e.edgeID)}
	}
	cfg.Edge.EdgeID = e.edgeID
	cfg.Edge.PresenceLease = e.presenceLease
	cfg.Edge.TypingRate = e.typingRate
	cfg.Edge.TypingBurst = e.typingBurst
	cfg.Edge.TypingMaxMembers = e.typingMaxMembers
	cfg.Edge.EditWindow = e.editWindow
	cfg.Edge.DeleteWindow = e.deleteWindow
	cfg.WebApp = e.webApp
	return e.limits.apply(&cfg.Edge)
}
