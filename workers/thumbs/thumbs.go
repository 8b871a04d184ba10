package thumbs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // decoders of the image types uploads may have
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp"

	"github.com/natter-im/natter/jetstream/attachments"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/runner"
)

// Config of the thumbs role. Zero values take the documented defaults.
type Config struct {
	// MaxSide is the longest side of a thumbnail in pixels (images smaller
	// than that are copied at their size). Zero means 320.
	MaxSide int
	// MaxPixels: an image with more pixels is not decoded (a thumbnail job
	// for it is dead-lettered): decoding costs 4 bytes a pixel. Zero means
	// 40 million.
	MaxPixels int
	// MaxSize is the largest original read, in bytes. Zero means 64 MiB.
	MaxSize int64
	// Logger; nil means discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxSide <= 0 {
		c.MaxSide = 320
	}
	if c.MaxPixels <= 0 {
		c.MaxPixels = 40_000_000
	}
	if c.MaxSize <= 0 {
		c.MaxSize = 64 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Handler makes thumbnails.
type Handler struct {
	meta *attachments.Bucket
	st   attachments.Store
	cfg  Config
}

var _ runner.Handler = (*Handler)(nil)

// New returns the thumbs handler.
func New(meta *attachments.Bucket, st attachments.Store, cfg Config) *Handler {
	return &Handler{meta: meta, st: st, cfg: cfg.withDefaults()}
}

// errPoison marks a job that can never succeed.
var errPoison = errors.New("thumbs: cannot make a thumbnail")

// Handle makes the thumbnail of each job's attachment.
func (h *Handler) Handle(ctx context.Context, msgs []jetstream.Msg) []runner.Result {
	res := make([]runner.Result, len(msgs))
	for i, m := range msgs {
		id := subjects.AttachFromThumb(m.Subject())
		if id == "" {
			res[i] = runner.Result{Outcome: runner.Poison, Reason: "thumbs: not a thumbnail job subject: " + m.Subject()}
			continue
		}
		err := h.thumb(ctx, id)
		switch {
		case err == nil:
			res[i] = runner.Result{Outcome: runner.Ack}
		case errors.Is(err, errPoison):
			h.cfg.Logger.Warn("thumbnail not made", "id", id, "err", err)
			res[i] = runner.Result{Outcome: runner.Poison, Reason: err.Error()}
		default:
			res[i] = runner.Result{Outcome: runner.Retry, Reason: err.Error()}
		}
	}
	return res
}

// Thumb makes the thumbnail of attachment id now (what a job does).
func (h *Handler) thumb(ctx context.Context, id string) error {
	m, _, err := h.meta.Get(ctx, id)
	if errors.Is(err, attachments.ErrNotFound) {
		return nil // deleted since: nothing to do
	}
	if err != nil {
		return err
	}
	if !m.IsImage() || m.Thumb != nil {
		return nil
	}
	rc, err := h.st.Get(ctx, subjects.AttachObject(id), 0, -1)
	if errors.Is(err, attachments.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	orig, err := io.ReadAll(io.LimitReader(rc, h.cfg.MaxSize))
	rc.Close()
	if err != nil {
		return fmt.Errorf("thumbs: read %s: %w", id, err)
	}
	ic, format, err := image.DecodeConfig(bytes.NewReader(orig))
	if err != nil {
		return fmt.Errorf("%w: %s: %v", errPoison, id, err)
	}
	if ic.Width <= 0 || ic.Height <= 0 || ic.Width*ic.Height > h.cfg.MaxPixels {
		return fmt.Errorf("%w: %s: %dx%d pixels (at most %d)", errPoison, id, ic.Width, ic.Height, h.cfg.MaxPixels)
	}
	src, _, err := image.Decode(bytes.NewReader(orig))
	if err != nil {
		return fmt.Errorf("%w: %s: %v", errPoison, id, err)
	}
	w, ht := fit(ic.Width, ic.Height, h.cfg.MaxSide)
	dst := image.NewRGBA(image.Rect(0, 0, w, ht))
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Src, nil)
	var buf bytes.Buffer
	ctype := "image/jpeg"
	if format == "png" || format == "gif" {
		// Kept with their transparency.
		ctype = "image/png"
		err = png.Encode(&buf, dst)
	} else {
		err = jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 80})
	}
	if err != nil {
		return fmt.Errorf("thumbs: encode %s: %w", id, err)
	}
	sum := sha256.Sum256(buf.Bytes())
	th := &attachments.Thumb{Size: int64(buf.Len()), Type: ctype, Width: w, Height: ht, SHA256: hex.EncodeToString(sum[:])}
	if _, err := h.st.Put(ctx, subjects.AttachThumbObject(id), bytes.NewReader(buf.Bytes()), int64(buf.Len()), ctype); err != nil {
		return err
	}
	_, err = h.meta.Update(ctx, id, func(m *attachments.Meta) (bool, error) {
		m.Thumb = th
		if m.Width == 0 {
			m.Width, m.Height = ic.Width, ic.Height
		}
		return true, nil
	})
	if errors.Is(err, attachments.ErrNotFound) {
		// Deleted while we worked: the thumbnail goes too.
		return h.st.Delete(ctx, subjects.AttachThumbObject(id))
	}
	h.cfg.Logger.Debug("thumbnail made", "id", id, "size", strconv.Itoa(w)+"x"+strconv.Itoa(ht))
	return err
}

// fit returns w x h scaled to fit a side x side square (never enlarged),
// each side at least 1.
func fit(w, h, side int) (int, int) {
	if w <= side && h <= side {
		return w, h
	}
	if w >= h {
		return side, max(1, h*side/w)
	}
	return max(1, w*side/h), side
}
