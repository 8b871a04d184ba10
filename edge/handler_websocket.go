package edge

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/natter-im/natter/edge/auth"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/subjects"
)

// handleWebSocket checks origin, subprotocol and (when given) the token
// before upgrading; a browser that cannot set headers authenticates with its
// first frame instead.
func (e *Edge) handleWebSocket(c *fiber.Ctx) error {
	if e.draining.Load() {
		return restError(c, fiber.StatusServiceUnavailable, protocol.CodeUnavailable, "edge is shutting down: connect to another edge")
	}
	if !e.originAllowed(c) {
		return originRefused(c)
	}
	ip := e.clientIP(c)
	if ok, wait := e.ips.Attempt(ip, time.Now()); !ok {
		e.m.errors.WithLabelValues(string(protocol.CodeRateLimited)).Inc()
		return tooMany(c, protocol.CodeRateLimited, wait, "too many connection attempts from "+ip.String()+": at most "+
			strconv.FormatFloat(e.cfg.Limits.IPConnRate, 'f', -1, 64)+" per second (burst "+strconv.Itoa(e.cfg.Limits.IPConnBurst)+"); retry after "+strconv.Itoa(wait)+" s")
	}
	if !websocket.FastHTTPIsWebSocketUpgrade(c.Context()) {
		return restError(c, fiber.StatusUpgradeRequired, protocol.CodeBadFrame, "GET "+protocol.Path+" needs a WebSocket upgrade")
	}
	sub, err := protocol.Negotiate(string(c.Request().Header.Peek("Sec-WebSocket-Protocol")))
	if err != nil {
		return restError(c, fiber.StatusBadRequest, protocol.CodeBadVersion, err.(*protocol.Error).Msg)
	}
	// Copies: fiber's strings point into the request, which fasthttp reuses
	// once the hijack handler has returned.
	device := strings.Clone(c.Get(protocol.HeaderDevice))
	if device != "" {
		if err := subjects.ValidID(device); err != nil {
			return restError(c, fiber.StatusBadRequest, protocol.CodeBadFrame, protocol.HeaderDevice+": "+err.Error())
		}
	}
	key, ok := challengeKey(c)
	if !ok {
		c.Set("Sec-WebSocket-Version", "13")
		return restError(c, fiber.StatusBadRequest, protocol.CodeBadFrame, "a WebSocket upgrade needs Sec-WebSocket-Version 13 and a Sec-WebSocket-Key of 16 base64 bytes")
	}
	var claims *auth.Claims
	if h := c.Get(fiber.HeaderAuthorization); h != "" {
		cl, err := e.verify(h)
		if err != nil {
			return restError(c, fiber.StatusUnauthorized, protocol.CodeUnauthorized, err.Error())
		}
		if a := e.admit(tokenOf(cl, device)); a != nil {
			e.m.errors.WithLabelValues(string(a.code)).Inc()
			return restError(c, a.status, a.code, a.msg)
		}
		claims = &cl
	}
	// The counts are taken last: every answer from here on is the
	// session's (open and session.end give them back).
	held := false
	if claims != nil {
		ok, n := e.limits.Connect(claims.User, time.Now())
		if !ok {
			e.m.errors.WithLabelValues(string(protocol.CodeTooMany)).Inc()
			return tooMany(c, protocol.CodeTooMany, 0, e.tooManyConns(claims.User, n))
		}
		held = true
	}
	if !e.ips.Open(ip) {
		if held {
			e.limits.Disconnect(claims.User)
		}
		e.m.errors.WithLabelValues(string(protocol.CodeTooMany)).Inc()
		return tooMany(c, protocol.CodeTooMany, 0, "too many connections from "+ip.String()+": at most "+strconv.Itoa(e.ips.Max())+" open on this edge")
	}
	r := &http.Request{Method: http.MethodGet, Header: http.Header{
		"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {key},
	}}
	if sub != "" {
		r.Header["Sec-Websocket-Protocol"] = []string{sub}
	}
	e.wg.Add(1)
	// fasthttp answers nothing and hands over the socket once this handler
	// has returned (releasing its request context and buffers when the
	// hijack handler returns: the server keeps hijacked connections open,
	// see Register); the upgrader writes the 101 answer on the raw socket.
	// Reading the raw socket skips what fasthttp has buffered past the
	// request: nothing, unless the client broke RFC 6455 (4.1) by sending
	// frames before the 101, whose session then fails (or goes silent and
	// is closed by the heartbeat).
	ctx := c.Context()
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(nc net.Conn) {
		raw, direct := nc, false
		if u, ok := nc.(interface{ UnsafeConn() net.Conn }); ok {
			raw, direct = u.UnsafeConn(), true
		}
		s := e.open(raw, r, claims, device, ip, held)
		switch {
		case s == nil:
		case direct:
			go s.readLoop()
		default:
			// nc reads through fasthttp's buffer, which is only ours
			// until this handler returns.
			s.readLoop()
		}
	})
	return nil
}

// challengeKey returns the client's Sec-WebSocket-Key when the upgrade
// request is one the upgrader accepts (version 13, a 16-byte key).
func challengeKey(c *fiber.Ctx) (string, bool) {
	if !tokenListHas(c.Get("Sec-WebSocket-Version"), "13") {
		return "", false
	}
	key := strings.Clone(c.Get("Sec-WebSocket-Key"))
	b, err := base64.StdEncoding.DecodeString(key)
	return key, err == nil && len(b) == 16
}

func tokenListHas(list, token string) bool {
	for t := range strings.SplitSeq(list, ",") {
		if strings.TrimSpace(t) == token {
			return true
		}
	}
	return false
}

func (e *Edge) verify(header string) (auth.Claims, error) {
	tok, err := auth.BearerToken(header)
	if err != nil {
		return auth.Claims{}, err
	}
	return e.verifier.Verify(tok)
}

// open upgrades a hijacked socket and sets up its session: the auth frame
// (when no token came with the upgrade), the delivery subscription, the
// token expiry and the hello. It returns the session, ready for its read
// loop, or nil when the session has ended already.
// The session gives back the connection counts taken for it (ip's, and
// the user's when held) when it ends.
func (e *Edge) open(raw net.Conn, r *http.Request, claims *auth.Claims, device string, ip netip.Addr, held bool) *session {
	conn, err := e.upgrader.Upgrade(&hijacked{conn: raw}, r, nil)
	if err != nil {
		_ = raw.Close()
		e.ips.Close(ip)
		if held {
			e.limits.Disconnect(claims.User)
		}
		e.wg.Done()
		return nil
	}
	s := newSession(e, conn, sessionID())
	s.ip, s.userHeld = ip, held
	e.m.connections.Inc()
	conn.SetReadLimit(int64(e.cfg.MaxBody + protocol.FrameOverhead))
	if !s.setup(claims, device) {
		s.end()
		return nil
	}
	return s
}

// setup authenticates the session and registers it; false means it is
// closing.
func (s *session) setup(claims *auth.Claims, device string) bool {
	e := s.e
	if claims == nil {
		cl, dev, ok := s.authFrame()
		if !ok {
			return false
		}
		claims = &cl
		if dev != "" {
			device = dev
		}
	}
	if device == "" {
		device = claims.Device
	}
	if device == "" {
		device = protocol.DefaultDevice
	}
	s.user, s.device = claims.User, device
	s.token = tokenOf(*claims, device)
	if a := e.admit(s.token); a != nil {
		e.m.errors.WithLabelValues(string(a.code)).Inc()
		s.reply(protocol.Err("", a.code, a.msg))
		s.close(a.close, closeReason(a), true, false)
		return false
	}
	if !s.userHeld {
		ok, n := e.limits.Connect(s.user, time.Now())
		if !ok {
			e.m.errors.WithLabelValues(string(protocol.CodeTooMany)).Inc()
			msg := e.tooManyConns(s.user, n)
			s.reply(protocol.Err("", protocol.CodeTooMany, msg))
			s.close(protocol.CloseTooManyConnections, "too many connections", true, false)
			return false
		}
		s.userHeld = true
	}
	if e.draining.Load() {
		s.close(protocol.CloseGoingAway, "edge is shutting down", true, true)
		return false
	}
	// The verifier accepts a token up to the leeway past exp; so does the
	// heartbeat, which closes the session once that has passed.
	leeway := e.cfg.Auth.Leeway
	if leeway <= 0 {
		leeway = auth.DefaultLeeway
	}
	s.expires = e.since() + int64(time.Until(claims.ExpiresAt.Add(leeway)))
	// The hello goes out once the session is in the hub with its
	// subscription flushed (a message fanned out after the client has the
	// hello is pushed to it), and before any delivery: it is queued first,
	// and the deliveries that arrive while the session joins the hub queue
	// behind it until the writer is released (TestHelloComesFirst).
	s.hold()
	s.enqueue(protocol.Hello(protocol.HelloFrame{
		V: protocol.Version, User: s.user, Device: s.device, Session: s.id,
		PingMS: e.cfg.PingInterval.Milliseconds(), MaxBody: e.cfg.MaxBody,
	}))
	if err := e.hub.add(s); err != nil {
		e.log.Warn("session rejected", "user", s.user, "err", err)
		s.dropQueued()
		s.close(protocol.CloseInternal, "delivery subscription failed", true, true)
		s.release()
		return false
	}
	s.inHub = true
	s.release()
	// Checked once the session is in the hub, where an entry that arrives
	// from now on finds it (enforceRevocations); one that came before the
	// add is seen here.
	if a := e.admit(s.token); a != nil {
		e.m.errors.WithLabelValues(string(a.code)).Inc()
		s.close(a.close, closeReason(a), true, false)
		return false
	}
	return true
}

// authFrame waits for the first frame, which must be auth with a valid token.
func (s *session) authFrame() (auth.Claims, string, bool) {
	e := s.e
	_ = s.conn.SetReadDeadline(time.Now().Add(e.cfg.AuthTimeout))
	mt, data, err := s.conn.ReadMessage()
	if err != nil {
		if errors.Is(err, websocket.ErrReadLimit) {
			s.close(protocol.CloseTooBig, "frame too big", false, false)
		} else {
			s.close(protocol.CloseAuthTimeout, "no auth frame within "+e.cfg.AuthTimeout.String(), true, false)
		}
		return auth.Claims{}, "", false
	}
	if mt != websocket.TextMessage {
		s.close(protocol.ClosePolicy, "first frame must be an auth frame", true, false)
		return auth.Claims{}, "", false
	}
	req, derr := protocol.Decode(data)
	if derr != nil {
		s.reply(protocol.ErrFrame("", derr))
		s.close(protocol.ClosePolicy, "first frame must be an auth frame", true, false)
		return auth.Claims{}, "", false
	}
	if req.Op != protocol.OpAuth {
		s.reply(protocol.Err(req.ID, protocol.CodeUnauthorized, "first frame must be auth (or send an Authorization header)"))
		s.close(protocol.ClosePolicy, "first frame must be an auth frame", true, false)
		return auth.Claims{}, "", false
	}
	cl, err := e.verifier.Verify(req.Token)
	if err != nil {
		e.m.errors.WithLabelValues(string(protocol.CodeUnauthorized)).Inc()
		s.reply(protocol.Err(req.ID, protocol.CodeUnauthorized, err.Error()))
		s.close(protocol.CloseUnauthorized, auth.Code(err), true, false)
		return auth.Claims{}, "", false
	}
	return cl, req.Device, true
}

func sessionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "s_" + hex.EncodeToString(b[:])
}

// originAllowed enforces the browser Origin allow-list; requests without an
// Origin header (native clients) pass, and so do the pages of the web app
// when this edge serves it (their Origin is the edge's own).
func (e *Edge) originAllowed(c *fiber.Ctx) bool {
	o := c.Get(fiber.HeaderOrigin)
	return o == "" || e.anyOrigin || e.origins[o] || (e.app != nil && sameOrigin(c))
}

func originRefused(c *fiber.Ctx) error {
	return restError(c, fiber.StatusForbidden, protocol.CodeForbidden, "origin "+c.Get(fiber.HeaderOrigin)+" is not allowed")
}

func restError(c *fiber.Ctx, status int, code protocol.Code, msg string) error {
	return c.Status(status).JSON(fiber.Map{"code": code, "msg": msg})
}

// hijacked hands websocket.Upgrader a socket fasthttp has hijacked already;
// the upgrader only hijacks it and writes the 101 answer to it.
type hijacked struct{ conn net.Conn }

func (h *hijacked) Header() http.Header { return http.Header{} }
func (h *hijacked) Write(p []byte) (int, error) {
	return 0, errors.New("edge: write to a hijacked response")
}
func (h *hijacked) WriteHeader(int) {}

// Hijack returns the socket with empty buffers (the upgrader reads nothing
// from them: it has buffers of its own).
func (h *hijacked) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return h.conn, bufio.NewReadWriter(bufio.NewReaderSize(h.conn, 16), bufio.NewWriterSize(h.conn, 512)), nil
}
