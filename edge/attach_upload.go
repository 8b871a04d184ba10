package edge

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // image.DecodeConfig of uploads
	_ "image/jpeg"
	_ "image/png"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go/jetstream"
	_ "golang.org/x/image/webp" // image.DecodeConfig of webp uploads

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/attachments"
	"github.com/natter-im/natter/jetstream/subjects"
)

// AttachPath is the REST path of attachments.
const AttachPath = "/v1/attachments"

// sniffLen is how much of an upload is read before anything is stored: the
// type is sniffed from its first 512 bytes and an image's dimensions read
// from all of it (a JPEG whose size comes later gets none here; the
// thumbs role reads them from the whole file).
const sniffLen = 64 << 10

// errUploadTooBig is what the upload's reader returns past the limit.
var errUploadTooBig = errors.New("edge: upload past the size limit")

// capReader returns errUploadTooBig once more than max bytes were read.
// Its first error (io.EOF too) is its answer from then on: fasthttp's
// chunked body reader, asked again after its end, waits for another chunk.
type capReader struct {
	r   io.Reader
	n   int64
	max int64
	err error
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if rem := c.max + 1 - c.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.max {
		err = errUploadTooBig
	}
	c.err = err
	return n, err
}

// upload is POST /v1/attachments: the body is the file, Content-Type its
// declared type, ?name= its file name. It answers 201 with the attachment.
func (e *Edge) upload(c *fiber.Ctx) error {
	cfg := e.cfg.Attach
	user, _ := c.Locals("user").(string)
	// Whatever is refused before the whole body was read closes the
	// connection: the rest of the body must not be read as a request.
	refuse := func(code protocol.Code, msg string) error {
		c.Context().SetConnectionClose()
		e.m.errors.WithLabelValues(string(code)).Inc()
		return restError(c, code.HTTPStatus(), code, msg)
	}
	declared, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil {
		return refuse(protocol.CodeUnsupportedType, "Content-Type: "+strconv.Quote(c.Get(fiber.HeaderContentType))+" is not a media type (allowed: "+strings.Join(cfg.Types, ", ")+")")
	}
	declared = strings.ToLower(declared)
	if !slices.Contains(cfg.Types, declared) {
		return refuse(protocol.CodeUnsupportedType, "Content-Type: "+declared+" is not allowed (allowed: "+strings.Join(cfg.Types, ", ")+")")
	}
	name := c.Query("name")
	if pe := protocol.CheckAttachmentName(name); pe != nil {
		return refuse(protocol.CodeBadFrame, pe.Msg)
	}
	size := int64(c.Request().Header.ContentLength()) // -1: chunked
	if size > cfg.MaxSize {
		return refuse(protocol.CodeTooBig, "attachment: Content-Length "+strconv.FormatInt(size, 10)+" bytes, max "+strconv.FormatInt(cfg.MaxSize, 10))
	}
	if size == 0 || size < -1 {
		return refuse(protocol.CodeBadFrame, "body: the file is required (a non-empty body)")
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 10*time.Minute)
	defer cancel()
	limit := cfg.MaxSize
	if cfg.Quota > 0 {
		used, err := e.attMeta.Used(ctx, user)
		if err != nil {
			c.Context().SetConnectionClose()
			return e.restErr(c, err)
		}
		if size > cfg.Quota-used {
			return refuse(protocol.CodeQuotaExceeded, quotaMsg(used, cfg.Quota, size))
		}
		limit = min(limit, cfg.Quota-used)
	}
	var body io.Reader = c.Context().RequestBodyStream()
	if body == nil || !c.Request().IsBodyStream() {
		body = bytes.NewReader(c.Body())
	}
	cr := &capReader{r: body, max: limit}
	br := bufio.NewReaderSize(cr, sniffLen)
	head, err := br.Peek(sniffLen)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		if errors.Is(err, errUploadTooBig) {
			return e.tooBig(refuse, limit, cfg, used(cfg, limit))
		}
		return refuse(protocol.CodeBadFrame, "body: "+err.Error())
	}
	sniffed, _, _ := mime.ParseMediaType(http.DetectContentType(head))
	if msg := typeMismatch(declared, sniffed); msg != "" {
		return refuse(protocol.CodeUnsupportedType, msg)
	}
	m := attachments.Meta{ID: attachments.NewID(), Owner: user, Name: name, Type: declared, Created: time.Now().UnixMilli()}
	if strings.HasPrefix(declared, "image/") {
		if ic, _, err := image.DecodeConfig(bytes.NewReader(head)); err == nil {
			m.Width, m.Height = ic.Width, ic.Height
		}
	}
	h := sha256.New()
	n, err := e.attStore.Put(ctx, subjects.AttachObject(m.ID), io.TeeReader(br, h), size, declared)
	if err != nil {
		c.Context().SetConnectionClose()
		// A failed put stores nothing (the store's contract); make sure.
		_ = e.attStore.Delete(context.WithoutCancel(ctx), subjects.AttachObject(m.ID))
		if errors.Is(err, errUploadTooBig) {
			return e.tooBig(refuse, limit, cfg, used(cfg, limit))
		}
		e.log.Warn("attachment upload failed", "user", user, "err", err)
		return restError(c, fiber.StatusServiceUnavailable, protocol.CodeUnavailable, "attachment not stored: "+err.Error())
	}
	if size >= 0 && n != size {
		_ = e.attStore.Delete(context.WithoutCancel(ctx), subjects.AttachObject(m.ID))
		return refuse(protocol.CodeBadFrame, "body: "+strconv.FormatInt(n, 10)+" bytes, Content-Length said "+strconv.FormatInt(size, 10))
	}
	m.Size, m.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	if cfg.Quota > 0 {
		if _, err := e.attMeta.AddUsed(ctx, user, n, cfg.Quota); err != nil {
			_ = e.attStore.Delete(context.WithoutCancel(ctx), subjects.AttachObject(m.ID))
			if errors.Is(err, attachments.ErrQuota) {
				return refuse(protocol.CodeQuotaExceeded, "attachment: "+err.Error())
			}
			return e.restErr(c, err)
		}
	}
	if err := e.attMeta.Create(ctx, m); err != nil {
		_ = e.attStore.Delete(context.WithoutCancel(ctx), subjects.AttachObject(m.ID))
		if cfg.Quota > 0 {
			_, _ = e.attMeta.AddUsed(context.WithoutCancel(ctx), user, -n, 0)
		}
		return e.restErr(c, err)
	}
	if m.IsImage() {
		// The thumbs role makes the thumbnail; the upload does not wait.
		if _, err := e.js.Publish(ctx, subjects.AttachThumb(m.ID), nil, jetstream.WithMsgID(m.ID)); err != nil {
			e.log.Warn("attachment: thumbnail job not queued", "id", m.ID, "err", err)
		}
	}
	return c.Status(fiber.StatusCreated).JSON(m.Attachment())
}

// used is what the quota had taken when limit was set from it (for the
// message of a cut upload).
func used(cfg AttachConfig, limit int64) int64 {
	if cfg.Quota > 0 && limit < cfg.MaxSize {
		return cfg.Quota - limit
	}
	return -1
}

// tooBig answers an upload cut at limit: too_big at the size limit,
// quota_exceeded when the quota set the limit.
func (e *Edge) tooBig(refuse func(protocol.Code, string) error, limit int64, cfg AttachConfig, usedBytes int64) error {
	if usedBytes >= 0 {
		return refuse(protocol.CodeQuotaExceeded, quotaMsg(usedBytes, cfg.Quota, limit+1))
	}
	return refuse(protocol.CodeTooBig, "attachment: more than "+strconv.FormatInt(limit, 10)+" bytes (the most one upload may have)")
}

func quotaMsg(used, quota, more int64) string {
	return fmt.Sprintf("attachment: %d of the %d bytes of the quota stored, %d more would pass it (delete attachments, or wait for unsent uploads to expire)", used, quota, more)
}

// typeMismatch says why bytes sniffed as sniffed cannot be of the declared
// type, or "" when they can: an image must be what it declares, and no
// other type may hide an image or HTML.
func typeMismatch(declared, sniffed string) string {
	switch {
	case strings.HasPrefix(declared, "image/") && sniffed != declared:
		return "Content-Type: declared " + declared + " but the bytes are " + sniffed
	case !strings.HasPrefix(declared, "image/") && (strings.HasPrefix(sniffed, "image/") || sniffed == "text/html"):
		return "Content-Type: declared " + declared + " but the bytes are " + sniffed + " (upload it as such, if allowed)"
	}
	return ""
}
