package admin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/revoke"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/pushreg"
	"github.com/natter-im/natter/workers/events"
)

// Paths of the admin API.
const (
	PathRevoke        = "/admin/v1/revoke"
	PathBan           = "/admin/v1/ban"
	PathUnban         = "/admin/v1/unban"
	PathSessions      = "/admin/v1/sessions"
	PathDisconnect    = "/admin/v1/disconnect"
	PathConvInspect   = "/admin/v1/conv/inspect"
	PathConvFreeze    = "/admin/v1/conv/freeze"
	PathConvUnfreeze  = "/admin/v1/conv/unfreeze"
	PathErase         = "/admin/v1/erase"
	PathConvDelete    = "/admin/v1/conv/delete"
	PathConvRetention = "/admin/v1/conv/retention"
)

// Audit event kinds (EVENTS, im.evt.<kind>.<AuditConv>).
const (
	EventRevoke        = "admin_revoke"
	EventBan           = "admin_ban"
	EventUnban         = "admin_unban"
	EventSessions      = "admin_sessions"
	EventDisconnect    = "admin_disconnect"
	EventConvInspect   = "admin_conv_inspect"
	EventConvFreeze    = "admin_conv_freeze"
	EventConvUnfreeze  = "admin_conv_unfreeze"
	EventErase         = "admin_erase"
	EventConvDelete    = "admin_conv_delete"
	EventConvRetention = "admin_conv_retention"
	// AuditConv is the conv token of the audit events.
	AuditConv = "_admin"
)

// MinTokenLen is the shortest admin credential accepted.
const MinTokenLen = 32

// Config of the admin API.
type Config struct {
	// Token is the admin credential, sent as "Authorization: Bearer
	// <token>"; at least MinTokenLen bytes. Empty means the API is off:
	// every call gets 403 admin_disabled.
	Token string
	// TokenLifetime is the longest lifetime of a user token (exp - iat):
	// how long a revocation by user or device is kept. Zero means
	// revoke.DefaultTokenLifetime (24h).
	TokenLifetime time.Duration
	// Gather bounds how long a call to every edge (sessions, disconnect)
	// waits for their answers: it ends once no answer has come for a
	// fifth of it, or after it. Zero means DefaultGather (1s).
	Gather time.Duration
	// Archive is the store of record, for erase; nil (an edge) means erase
	// answers 503: call the admin API of a worker.
	Archive Archive
	// Erasers remove the kinds of per-user data erase does not know itself
	// (PendingErasers); none by default.
	Erasers []Eraser
	// Logger; nil means discard.
	Logger *slog.Logger
}

// EraseTimeout bounds one erase call (the other calls: 10 s).
const EraseTimeout = 5 * time.Minute

// DefaultGather is the default of Config.Gather.
const DefaultGather = time.Second

// Request is the JSON body of every admin call; each path reads its
// fields.
type Request struct {
	// JTI revokes one token (revoke). Exp (Unix seconds) is its expiry, so
	// the entry lapses then; zero means now + the token lifetime.
	JTI string `json:"jti,omitempty"`
	Exp int64  `json:"exp,omitempty"`
	// User: revoke (with Device: one device), ban, unban.
	User   string `json:"user,omitempty"`
	Device string `json:"device,omitempty"`
	// Before (Unix seconds): revoke tokens issued before it; zero means
	// now (rounded up to the next second).
	Before int64 `json:"before,omitempty"`
	// Until (Unix seconds) ends a ban; zero means until unban.
	Until int64 `json:"until,omitempty"`
	// Reason is shown to the refused client and kept in the audit event.
	Reason string `json:"reason,omitempty"`
	// Conv: conv/inspect, conv/freeze, conv/unfreeze, conv/delete,
	// conv/retention.
	Conv string `json:"conv,omitempty"`
	// Days and Messages (conv/retention) set the conversation's own
	// retention limits: 0 keeps forever, -1 returns to its class's
	// (--retention-*); absent leaves them. Hold sets (true) or lifts
	// (false) its legal hold; absent leaves it.
	Days     *int  `json:"days,omitempty"`
	Messages *int  `json:"messages,omitempty"`
	Hold     *bool `json:"hold,omitempty"`
}

// Register adds the admin routes to app.
func Register(app *fiber.App, cfg Config, js jetstream.JetStream) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &api{cfg: cfg, w: revoke.NewWriter(js, cfg.TokenLifetime), pub: events.NewPublisher(js), log: cfg.Logger,
		js: js, nc: js.Conn(), convs: convapi.NewClient(js.Conn(), 0)}
	if a.cfg.Gather <= 0 {
		a.cfg.Gather = DefaultGather
	}
	g := app.Group("/admin/v1", a.authorize)
	g.Post("/revoke", a.handle(EventRevoke, result(a.revoke)))
	g.Post("/ban", a.handle(EventBan, result(a.ban)))
	g.Post("/unban", a.handle(EventUnban, result(a.unban)))
	g.Post("/sessions", a.handle(EventSessions, a.sessions))
	g.Post("/disconnect", a.handle(EventDisconnect, a.disconnect))
	g.Post("/conv/inspect", a.handle(EventConvInspect, a.convInspect))
	g.Post("/conv/freeze", a.handle(EventConvFreeze, result(a.convFreeze)))
	g.Post("/conv/unfreeze", a.handle(EventConvUnfreeze, result(a.convUnfreeze)))
	g.Post("/erase", a.handle(EventErase, a.erase))
	g.Post("/conv/delete", a.handle(EventConvDelete, a.convDelete))
	g.Post("/conv/retention", a.handle(EventConvRetention, a.convRetention))
}

type api struct {
	cfg   Config
	w     *revoke.Writer
	pub   *events.Publisher
	log   *slog.Logger
	js    jetstream.JetStream
	nc    *nats.Conn
	convs *convapi.Client
}

// result adapts a REVOKED write to handle.
func result(f func(context.Context, Request, time.Time) (revoke.Result, error)) func(context.Context, Request, time.Time) (any, error) {
	return func(ctx context.Context, r Request, now time.Time) (any, error) { return f(ctx, r, now) }
}

// dropPush removes the push registrations of user's device ("": of all
// the user's devices) after a revocation or ban: a device logged out by
// the admin gets no more notifications. A failure is logged; the
// revocation stands.
func (a *api) dropPush(ctx context.Context, user, device string) {
	regs, err := pushreg.Open(ctx, a.js.Conn(), a.js)
	if err == nil {
		if device != "" {
			err = regs.Delete(ctx, user, device)
		} else {
			err = regs.DeleteUser(ctx, user)
		}
	}
	if err != nil {
		a.log.Warn("push registrations not removed", "user", user, "device", device, "err", err)
	}
}

func answer(c *fiber.Ctx, status int, code, msg string) error {
	return c.Status(status).JSON(fiber.Map{"code": code, "msg": msg})
}

// authorize lets through only the admin credential: no credential, a user
// token or any other string is refused.
func (a *api) authorize(c *fiber.Ctx) error {
	if a.cfg.Token == "" {
		return answer(c, fiber.StatusForbidden, "admin_disabled", "the admin API is off: no admin credential is configured (--admin-token-file)")
	}
	h := strings.TrimSpace(c.Get(fiber.HeaderAuthorization))
	scheme, tok, _ := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if h == "" || tok == "" || !strings.EqualFold(scheme, "Bearer") {
		return answer(c, fiber.StatusUnauthorized, "unauthorized", "missing admin credential: send Authorization: Bearer <admin token>")
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(a.cfg.Token)) != 1 {
		msg := "not the admin credential"
		if strings.Count(tok, ".") == 2 {
			msg += " (user tokens are never accepted here)"
		}
		a.log.Warn("admin call refused: bad credential", "path", c.Path(), "remote", c.IP())
		return answer(c, fiber.StatusUnauthorized, "unauthorized", msg)
	}
	return c.Next()
}

// handle decodes the request, publishes its audit event, then runs do.
func (a *api) handle(kind string, do func(context.Context, Request, time.Time) (any, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var r Request
		dec := json.NewDecoder(strings.NewReader(string(c.Body())))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			return answer(c, fiber.StatusBadRequest, "bad_json", "request body is not a JSON object of the documented fields: "+err.Error())
		}
		timeout := 10 * time.Second
		if kind == EventErase || kind == EventConvDelete {
			timeout = EraseTimeout
		}
		ctx, cancel := context.WithTimeout(c.UserContext(), timeout)
		defer cancel()
		now := time.Now()
		data, _ := json.Marshal(struct {
			Request
			Remote string `json:"remote"`
		}{r, c.IP()})
		ev := natter.Event{ID: "admin:" + randomID(), Kind: kind, Conv: AuditConv, TS: now.UnixMilli(), Actor: "admin", Data: data}
		if err := a.pub.Publish(ctx, ev); err != nil {
			a.log.Error("admin call refused: audit event not published", "kind", kind, "err", err)
			return answer(c, fiber.StatusServiceUnavailable, "unavailable", "audit event not published, nothing was done: retry")
		}
		res, err := do(ctx, r, now)
		if errors.Is(err, revoke.ErrInvalid) {
			return answer(c, fiber.StatusBadRequest, "bad_frame", err.Error())
		}
		if errors.Is(err, errNotFound) {
			return answer(c, fiber.StatusNotFound, "not_found", err.Error())
		}
		if errors.Is(err, errNoStore) {
			return answer(c, fiber.StatusServiceUnavailable, "unavailable", err.Error())
		}
		if err != nil {
			a.log.Error("admin call failed", "kind", kind, "err", err)
			return answer(c, fiber.StatusServiceUnavailable, "unavailable", "not done: retry")
		}
		a.log.Info("admin call", "kind", kind, "event", ev.ID)
		return c.JSON(res)
	}
}

func (a *api) revoke(ctx context.Context, r Request, now time.Time) (revoke.Result, error) {
	switch {
	case r.JTI != "" && (r.User != "" || r.Device != "" || r.Before != 0):
		return revoke.Result{}, errInvalid("give jti alone, or user (with device and before)")
	case r.JTI != "":
		return a.w.RevokeToken(ctx, r.JTI, unix(r.Exp), r.Reason, now)
	case r.User == "":
		return revoke.Result{}, errInvalid("give jti, or user (with device and before)")
	}
	var res revoke.Result
	var err error
	if r.Device != "" {
		res, err = a.w.RevokeDevice(ctx, r.User, r.Device, unix(r.Before), r.Reason, now)
	} else {
		res, err = a.w.RevokeUser(ctx, r.User, unix(r.Before), r.Reason, now)
	}
	if err == nil {
		a.dropPush(ctx, r.User, r.Device)
	}
	return res, err
}

func (a *api) ban(ctx context.Context, r Request, now time.Time) (revoke.Result, error) {
	res, err := a.w.Ban(ctx, r.User, r.Reason, unix(r.Until), now)
	if err == nil {
		a.dropPush(ctx, r.User, "")
	}
	return res, err
}

func (a *api) unban(ctx context.Context, r Request, _ time.Time) (revoke.Result, error) {
	return a.w.Unban(ctx, r.User)
}

func errInvalid(msg string) error { return fmt.Errorf("%w: %s", revoke.ErrInvalid, msg) }

func unix(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0)
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
