package edge

import "time"

// AttachConfig configures attachments: uploads (POST /v1/attachments),
// downloads and their signed URLs. Zero values take the documented
// defaults.
type AttachConfig struct {
	// MaxSize is the largest upload in bytes: a larger Content-Length is
	// refused (413 too_big) before the body is read, and a chunked body is
	// cut there. Zero means 25 MiB.
	MaxSize int64
	// Quota is the most bytes one user may have stored (uploads not yet
	// deleted or expired), kept per user in the ATTACHMENTS bucket. Zero
	// means 1 GiB; negative means no quota.
	Quota int64
	// Types is the allow-list of content types an upload may declare.
	// Images must also be what their bytes are (sniffed). Empty means
	// DefaultAttachTypes.
	Types []string
	// UploadTimeout bounds how long one upload may take to arrive (in
	// place of RequestReadTimeout) and one download to be written (in place
	// of the server's 30 s write timeout). Zero means 5m.
	UploadTimeout time.Duration
	// URLSecret is the HMAC-SHA256 key of signed download URLs. Every edge
	// of a deployment needs the same one for a URL made on one to work on
	// another. Empty means a random key per process.
	URLSecret []byte
	// URLTTL is how long a signed URL lives when the client asks for no
	// other time; URLMaxTTL the longest it may ask for. Zero means 10m and
	// 1h.
	URLTTL, URLMaxTTL time.Duration
}

// DefaultAttachTypes is the default allow-list of attachment content types.
var DefaultAttachTypes = []string{
	"image/png", "image/jpeg", "image/gif", "image/webp",
	"application/pdf", "text/plain", "application/zip",
	"audio/mpeg", "audio/ogg", "audio/mp4", "video/mp4", "video/webm",
	"application/octet-stream",
}

func (c AttachConfig) withDefaults() AttachConfig {
	if c.MaxSize <= 0 {
		c.MaxSize = 25 << 20
	}
	if c.Quota == 0 {
		c.Quota = 1 << 30
	}
	if len(c.Types) == 0 {
		c.Types = DefaultAttachTypes
	}
	if c.UploadTimeout <= 0 {
		c.UploadTimeout = 5 * time.Minute
	}
	if c.URLTTL <= 0 {
		c.URLTTL = 10 * time.Minute
	}
	if c.URLMaxTTL <= 0 {
		c.URLMaxTTL = time.Hour
	}
	c.URLTTL = min(c.URLTTL, c.URLMaxTTL)
	return c
}
