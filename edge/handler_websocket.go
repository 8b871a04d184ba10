package edge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
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
	if !websocket.FastHTTPIsWebSocketUpgrade(c.Context()) {
		return restError(c, fiber.StatusUpgradeRequired, protocol.CodeBadFrame, "GET "+protocol.Path+" needs a WebSocket upgrade")
	}
	if _, err := protocol.Negotiate(string(c.Request().Header.Peek("Sec-WebSocket-Protocol"))); err != nil {
		return restError(c, fiber.StatusBadRequest, protocol.CodeBadVersion, err.(*protocol.Error).Msg)
	}
	device := c.Get(protocol.HeaderDevice)
	if device != "" {
		if err := subjects.ValidID(device); err != nil {
			return restError(c, fiber.StatusBadRequest, protocol.CodeBadFrame, protocol.HeaderDevice+": "+err.Error())
		}
	}
	var claims *auth.Claims
	if h := c.Get(fiber.HeaderAuthorization); h != "" {
		cl, err := e.verify(h)
		if err != nil {
			return restError(c, fiber.StatusUnauthorized, protocol.CodeUnauthorized, err.Error())
		}
		claims = &cl
	}
	e.wg.Add(1)
	err := e.upgrader.Upgrade(c.Context(), func(conn *websocket.Conn) {
		defer e.wg.Done()
		e.serve(conn, claims, device)
	})
	if err != nil {
		e.wg.Done()
		// The upgrader has written its own 4xx answer.
		return nil
	}
	return nil
}

func (e *Edge) verify(header string) (auth.Claims, error) {
	tok, err := auth.BearerToken(header)
	if err != nil {
		return auth.Claims{}, err
	}
	return e.verifier.Verify(tok)
}

// serve runs one upgraded connection to its end.
func (e *Edge) serve(conn *websocket.Conn, claims *auth.Claims, device string) {
	s := newSession(e, conn, sessionID())
	e.m.connections.Inc()
	defer e.m.connections.Dec()
	go s.writeLoop()
	defer func() { <-s.written }()
	conn.SetReadLimit(int64(e.cfg.MaxBody + protocol.FrameOverhead))

	if claims == nil {
		cl, dev, ok := s.authFrame()
		if !ok {
			return
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
	if e.draining.Load() {
		s.close(protocol.CloseGoingAway, "edge is shutting down", true, true)
		return
	}
	if err := e.hub.add(s); err != nil {
		e.log.Warn("session rejected", "user", s.user, "err", err)
		s.close(protocol.CloseInternal, "delivery subscription failed", true, true)
		return
	}
	defer e.hub.remove(s)
	// The verifier accepts a token up to the leeway past exp; so does the timer.
	leeway := e.cfg.Auth.Leeway
	if leeway <= 0 {
		leeway = auth.DefaultLeeway
	}
	expiry := time.AfterFunc(time.Until(claims.ExpiresAt.Add(leeway)), func() {
		s.close(protocol.CloseUnauthorized, "token expired", true, false)
	})
	defer expiry.Stop()
	s.enqueue(protocol.Hello(protocol.HelloFrame{
		V: protocol.Version, User: s.user, Device: s.device, Session: s.id,
		PingMS: e.cfg.PingInterval.Milliseconds(), MaxBody: e.cfg.MaxBody,
	}))
	// Requests run with their own timeouts; a request in flight when the
	// socket closes finishes and its reply is dropped.
	s.readLoop(context.Background())
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
// Origin header (native clients) pass.
func (e *Edge) originAllowed(c *fiber.Ctx) bool {
	o := c.Get(fiber.HeaderOrigin)
	return o == "" || e.anyOrigin || e.origins[o]
}

func originRefused(c *fiber.Ctx) error {
	return restError(c, fiber.StatusForbidden, protocol.CodeForbidden, "origin "+c.Get(fiber.HeaderOrigin)+" is not allowed")
}

func restError(c *fiber.Ctx, status int, code protocol.Code, msg string) error {
	return c.Status(status).JSON(fiber.Map{"code": code, "msg": msg})
}
