package edge

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/attachments"
	"github.com/natter-im/natter/jetstream/subjects"
)

// registerAttach adds the attachment routes.
func (e *Edge) registerAttach(app *fiber.App) {
	app.Post(AttachPath, e.restAuth, e.upload)
	app.Get(AttachPath+"/:id", e.attachAuth, func(c *fiber.Ctx) error { return e.download(c, false) })
	app.Get(AttachPath+"/:id/thumb", e.attachAuth, func(c *fiber.Ctx) error { return e.download(c, true) })
	app.Post(AttachPath+"/:id/url", e.restAuth, e.signURL)
}

// attachAuth admits a download by a signed URL (?exp=&u=&sig=, for <img
// src>) or else like every REST request (a bearer token).
func (e *Edge) attachAuth(c *fiber.Ctx) error {
	if c.Query("sig") == "" {
		return e.restAuth(c)
	}
	exp, err := strconv.ParseInt(c.Query("exp"), 10, 64)
	user := c.Query("u")
	if err != nil || subjects.ValidID(user) != nil {
		return restError(c, fiber.StatusUnauthorized, protocol.CodeUnauthorized, "signed url: exp and u are required with sig")
	}
	now := time.Now()
	if now.Unix() > exp {
		return restError(c, fiber.StatusUnauthorized, protocol.CodeUnauthorized, "signed url: expired at "+time.Unix(exp, 0).UTC().Format(time.RFC3339)+": ask for a new one")
	}
	thumb := strings.HasSuffix(c.Path(), "/thumb")
	want := e.urlSig(c.Params("id"), thumb, user, exp)
	if !hmac.Equal([]byte(c.Query("sig")), []byte(want)) {
		return restError(c, fiber.StatusUnauthorized, protocol.CodeUnauthorized, "signed url: signature does not match (changed, or made with another secret)")
	}
	if time.Unix(exp, 0).Sub(now) > e.cfg.Attach.URLMaxTTL+time.Minute {
		return restError(c, fiber.StatusUnauthorized, protocol.CodeUnauthorized, "signed url: expiry further away than the edge's maximum")
	}
	c.Locals("user", user)
	return c.Next()
}

// urlSig is the signature of a download URL: HMAC-SHA256 over the
// attachment, the variant, the user and the expiry, base64url.
func (e *Edge) urlSig(id string, thumb bool, user string, exp int64) string {
	mac := hmac.New(sha256.New, e.cfg.Attach.URLSecret)
	variant := "file"
	if thumb {
		variant = "thumb"
	}
	mac.Write([]byte("natter-attachment-v1\n" + id + "\n" + variant + "\n" + user + "\n" + strconv.FormatInt(exp, 10)))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// SignedURL is the answer of POST /v1/attachments/{id}/url.
type SignedURL struct {
	// URL is the path and query of the download (relative to the edge).
	URL string `json:"url"`
	// Expires is when it stops working, Unix seconds.
	Expires int64 `json:"expires"`
}

// signURL is POST /v1/attachments/{id}/url[?ttl=<seconds>&thumb=1]: a
// short-lived URL for the user, who must be allowed to read the attachment.
func (e *Edge) signURL(c *fiber.Ctx) error {
	user, _ := c.Locals("user").(string)
	id := c.Params("id")
	ttl := e.cfg.Attach.URLTTL
	if v := c.Query("ttl"); v != "" {
		s, err := strconv.ParseInt(v, 10, 64)
		if err != nil || s <= 0 || time.Duration(s)*time.Second > e.cfg.Attach.URLMaxTTL {
			return e.restErr(c, &protocol.Error{Code: protocol.CodeBadFrame, Msg: "ttl: " + strconv.Quote(v) + " is not 1.." + strconv.Itoa(int(e.cfg.Attach.URLMaxTTL/time.Second)) + " seconds"})
		}
		ttl = time.Duration(s) * time.Second
	}
	thumb := c.Query("thumb") == "1" || c.Query("thumb") == "true"
	if _, err := e.readable(c.UserContext(), user, id); err != nil {
		return e.restErr(c, err)
	}
	exp := time.Now().Add(ttl).Unix()
	path := AttachPath + "/" + id
	if thumb {
		path += "/thumb"
	}
	q := url.Values{"exp": {strconv.FormatInt(exp, 10)}, "u": {user}, "sig": {e.urlSig(id, thumb, user, exp)}}
	return c.JSON(SignedURL{URL: path + "?" + q.Encode(), Expires: exp})
}

// readable returns the metadata of attachment id if user may read it: the
// uploader, and members of a conversation it was sent in. Anything else,
// an unknown id too, is forbidden (existence does not leak).
func (e *Edge) readable(ctx context.Context, user, id string) (attachments.Meta, error) {
	denied := &protocol.Error{Code: protocol.CodeForbidden, Msg: "attachment " + id + ": no such attachment, or not one you may read"}
	if !protocol.ValidAttachmentID(id) {
		return attachments.Meta{}, denied
	}
	m, _, err := e.attMeta.Get(ctx, id)
	if errors.Is(err, attachments.ErrNotFound) {
		return m, denied
	}
	if err != nil {
		return m, err
	}
	if m.Owner == user {
		return m, nil
	}
	for _, conv := range m.Convs {
		ok, err := e.members.IsMember(ctx, conv, user)
		if err != nil {
			return m, err
		}
		if ok {
			return m, nil
		}
	}
	return m, denied
}

// download is GET /v1/attachments/{id} (and /thumb): the bytes, with
// single ranges (206), ETag and If-None-Match (304).
func (e *Edge) download(c *fiber.Ctx, thumb bool) error {
	user, _ := c.Locals("user").(string)
	id := c.Params("id")
	ctx, cancel := context.WithTimeout(c.UserContext(), 15*time.Second)
	defer cancel()
	m, err := e.readable(ctx, user, id)
	if err != nil {
		return e.restErr(c, err)
	}
	object, size, ctype, sum := subjects.AttachObject(id), m.Size, m.Type, m.SHA256
	if thumb {
		if m.Thumb == nil {
			return e.restErr(c, &protocol.Error{Code: protocol.CodeNotFound, Msg: "attachment " + id + ": no thumbnail (not an image, or not made yet: retry shortly)"})
		}
		object, size, ctype, sum = subjects.AttachThumbObject(id), m.Thumb.Size, m.Thumb.Type, m.Thumb.SHA256
	}
	etag := `"` + sum + `"`
	c.Set(fiber.HeaderETag, etag)
	// Revalidated on every use (a 304 by ETag costs one metadata read):
	// a deleted attachment must not live on in caches.
	c.Set(fiber.HeaderCacheControl, "private, no-cache")
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set(fiber.HeaderAcceptRanges, "bytes")
	if etagMatch(c.Get(fiber.HeaderIfNoneMatch), etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, ctype)
	c.Set(fiber.HeaderContentDisposition, disposition(m, thumb))
	off, n, status := int64(0), size, fiber.StatusOK
	if rh := c.Get(fiber.HeaderRange); rh != "" && (c.Get(fiber.HeaderIfRange) == "" || c.Get(fiber.HeaderIfRange) == etag) {
		o, l, ok, multi := parseRange(rh, size)
		switch {
		case multi:
			// Several ranges: the whole file instead (allowed by RFC 9110).
		case !ok:
			c.Set(fiber.HeaderContentRange, "bytes */"+strconv.FormatInt(size, 10))
			return restError(c, fiber.StatusRequestedRangeNotSatisfiable, protocol.CodeBadFrame, "Range: "+strconv.Quote(rh)+" is not a satisfiable single byte range of "+strconv.FormatInt(size, 10)+" bytes")
		default:
			off, n, status = o, l, fiber.StatusPartialContent
			c.Set(fiber.HeaderContentRange, "bytes "+strconv.FormatInt(o, 10)+"-"+strconv.FormatInt(o+l-1, 10)+"/"+strconv.FormatInt(size, 10))
		}
	}
	c.Status(status)
	if c.Method() == fiber.MethodHead {
		c.Response().Header.SetContentLength(int(n))
		return nil
	}
	// The body is written after the handler returns: its reads get a
	// context of their own, ended when fasthttp closes the reader.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(c.UserContext()), 10*time.Minute)
	rc, err := e.attStore.Get(rctx, object, off, n)
	if err != nil {
		rcancel()
		c.Response().Header.Del(fiber.HeaderContentRange)
		if errors.Is(err, attachments.ErrNotFound) {
			return e.restErr(c, &protocol.Error{Code: protocol.CodeNotFound, Msg: "attachment " + id + ": its bytes are gone (deleted)"})
		}
		return e.restErr(c, err)
	}
	c.Context().SetBodyStream(cancelCloser{rc, rcancel}, int(n))
	return nil
}

type cancelCloser struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelCloser) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// disposition is the Content-Disposition of a download: inline for images
// (for <img src>), attachment for everything else; the file name quoted
// (ASCII) and in filename* (RFC 8187, UTF-8).
func disposition(m attachments.Meta, thumb bool) string {
	kind := "attachment"
	if m.IsImage() || thumb {
		kind = "inline"
	}
	if m.Name == "" {
		return kind
	}
	ascii := make([]byte, 0, len(m.Name))
	for _, r := range m.Name {
		switch {
		case r == '"' || r == '\\' || r < 0x20 || r >= 0x7f:
			ascii = append(ascii, '_')
		default:
			ascii = append(ascii, byte(r))
		}
	}
	return kind + `; filename="` + string(ascii) + `"; filename*=UTF-8''` + url.PathEscape(m.Name)
}

// etagMatch reports whether an If-None-Match header names etag (or is *).
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// parseRange reads a Range header for a file of size bytes: ok with the
// offset and length of a single satisfiable range; multi when it asks for
// several (served whole); neither when it is unsatisfiable or malformed.
func parseRange(h string, size int64) (off, n int64, ok, multi bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found {
		return 0, 0, false, false
	}
	if strings.Contains(spec, ",") {
		return 0, 0, false, true
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, false
	}
	if first == "" { // bytes=-N: the last N bytes
		k, err := strconv.ParseInt(last, 10, 64)
		if err != nil || k <= 0 || size == 0 {
			return 0, 0, false, false
		}
		k = min(k, size)
		return size - k, k, true, false
	}
	a, err := strconv.ParseInt(first, 10, 64)
	if err != nil || a < 0 || a >= size {
		return 0, 0, false, false
	}
	b := size - 1
	if last != "" {
		if b, err = strconv.ParseInt(last, 10, 64); err != nil || b < a {
			return 0, 0, false, false
		}
		b = min(b, size-1)
	}
	return a, b - a + 1, true, false
}
