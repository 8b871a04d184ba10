package edge

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"mime"
	"net"
	"net/url"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/natter-im/natter/edge/auth"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/subjects"
)

// DevTokenPath is the route of natter dev's token endpoint.
const DevTokenPath = "/dev/token"

// appHeaders are sent with every file of the web app: it loads only its
// own files and talks only to its own origin.
var appHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options":  "nosniff",
	"Referrer-Policy":         "no-referrer",
	"Cache-Control":           "no-cache",
}

// appFile is one file of the web app, read once at start.
type appFile struct {
	body  []byte
	ctype string
	etag  string
}

// loadApp reads every file of fsys.
func loadApp(fsys fs.FS) (map[string]appFile, error) {
	files := map[string]appFile{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(b)
		files["/"+p] = appFile{body: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, ok := files["/index.html"]; !ok {
		return nil, errors.New("no index.html")
	}
	return files, nil
}

// registerApp serves the web app's files (GET and HEAD; / is index.html).
// Registered after every other route, as a handler of every path that
// passes on what it does not serve: a path no file has stays 404 not_found
// (405 where a route takes another method).
func (e *Edge) registerApp(app *fiber.App) {
	app.Use(func(c *fiber.Ctx) error {
		if c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead {
			return c.Next()
		}
		p := c.Path()
		if strings.HasSuffix(p, "/") {
			p += "index.html"
		}
		f, ok := e.app[p]
		if !ok {
			return c.Next()
		}
		for k, v := range appHeaders {
			c.Set(k, v)
		}
		c.Set(fiber.HeaderETag, f.etag)
		if c.Get(fiber.HeaderIfNoneMatch) == f.etag {
			return c.SendStatus(fiber.StatusNotModified)
		}
		c.Set(fiber.HeaderContentType, f.ctype)
		return c.Send(f.body)
	})
}

// sameOrigin reports whether the request's Origin is the edge itself (the
// host the request was sent to): the page of the web app it serves.
func sameOrigin(c *fiber.Ctx) bool {
	u, err := url.Parse(c.Get(fiber.HeaderOrigin))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, string(c.Request().Header.Host()))
}

// devTokenRequest is the body of POST /dev/token.
type devTokenRequest struct {
	User   string `json:"user"`
	Device string `json:"device,omitempty"`
}

// handleDevToken mints a token for any user: natter dev's sign-in for the
// web app and for scripts. It answers only requests sent to an IP address
// or localhost (a page of another site that rebinds its DNS name to this
// edge cannot get a token), from native clients or the edge's own pages.
func (e *Edge) handleDevToken(c *fiber.Ctx) error {
	if !loopbackOrIPHost(string(c.Request().Header.Host())) {
		return restError(c, fiber.StatusForbidden, protocol.CodeForbidden, "host "+string(c.Request().Header.Host())+": "+DevTokenPath+" answers only requests to an IP address or localhost")
	}
	if !e.originAllowed(c) {
		return originRefused(c)
	}
	var r devTokenRequest
	if err := json.Unmarshal(c.Body(), &r); err != nil {
		return restError(c, fiber.StatusBadRequest, protocol.CodeBadJSON, "request body is not a JSON object {\"user\",\"device\"?}: "+err.Error())
	}
	if err := subjects.ValidID(r.User); err != nil {
		return restError(c, fiber.StatusBadRequest, protocol.CodeBadFrame, "user: "+err.Error())
	}
	if r.Device != "" {
		if err := subjects.ValidID(r.Device); err != nil {
			return restError(c, fiber.StatusBadRequest, protocol.CodeBadFrame, "device: "+err.Error())
		}
	}
	tok, err := auth.Mint(*e.cfg.DevTokens, nil, auth.MintClaims{User: r.User, Device: r.Device,
		Issuer: e.cfg.Auth.Issuer, Audience: e.cfg.Auth.Audience, TTL: auth.DefaultTTL})
	if err != nil {
		e.log.Error("dev token", "err", err)
		return restError(c, fiber.StatusInternalServerError, protocol.CodeInternal, "internal error")
	}
	return c.JSON(fiber.Map{"token": tok, "user": r.User, "ttl_ms": auth.DefaultTTL.Milliseconds()})
}

// loopbackOrIPHost: host (with or without port) is an IP literal or
// localhost.
func loopbackOrIPHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.EqualFold(host, "localhost") || net.ParseIP(host) != nil
}
