package edge

import (
	"bytes"
	"io"
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/natter-im/natter/edge/protocol"
)

// bodyGuard gives every route but the upload the request body it had
// before bodies were streamed: read whole before the handler, at most
// MaxBody+4 KiB (413 too_big past that, from the Content-Length before
// anything is read, or once a chunked body passes it).
func (e *Edge) bodyGuard(c *fiber.Ctx) error {
	if c.Method() == fiber.MethodPost && c.Path() == AttachPath {
		return c.Next()
	}
	if !c.Request().IsBodyStream() {
		return c.Next()
	}
	limit := e.cfg.MaxBody + 4096
	tooBig := func() error {
		c.Context().SetConnectionClose()
		return restError(c, fiber.StatusRequestEntityTooLarge, protocol.CodeTooBig, "request body: more than "+strconv.Itoa(limit)+" bytes")
	}
	if n := c.Request().Header.ContentLength(); n > limit {
		return tooBig()
	}
	b, err := io.ReadAll(io.LimitReader(c.Context().RequestBodyStream(), int64(limit)+1))
	if err != nil {
		c.Context().SetConnectionClose()
		return restError(c, fiber.StatusBadRequest, protocol.CodeBadFrame, "request body: "+err.Error())
	}
	if len(b) > limit {
		return tooBig()
	}
	c.Request().SetBodyRaw(b)
	return c.Next()
}

// requestConfig is fasthttp's per-request configuration, set once the
// headers are in. A download gets Attach.UploadTimeout to be written, an
// upload the same to arrive, and
// fasthttp reads one byte of its body before the handler runs (it reads
// up to the smaller of 8 KiB and the body limit), so that a Content-Length
// over the limit is answered before the body is sent. Every other request
// keeps the server's settings.
func (e *Edge) requestConfig(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	uri := h.RequestURI()
	if bytes.Equal(h.Method(), []byte(fiber.MethodPost)) && (bytes.Equal(uri, []byte(AttachPath)) || bytes.HasPrefix(uri, []byte(AttachPath+"?"))) {
		return fasthttp.RequestConfig{ReadTimeout: e.cfg.Attach.UploadTimeout, MaxRequestBodySize: 1}
	}
	if bytes.Equal(h.Method(), []byte(fiber.MethodGet)) && bytes.HasPrefix(uri, []byte(AttachPath+"/")) {
		// A download may take longer to write than the server's 30 s.
		return fasthttp.RequestConfig{WriteTimeout: e.cfg.Attach.UploadTimeout}
	}
	return fasthttp.RequestConfig{}
}
