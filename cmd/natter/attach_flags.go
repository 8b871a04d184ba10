package main

import (
	"time"

	"github.com/natter-im/natter/internal/cli"
	"github.com/natter-im/natter/internal/node"
)

// attachFlags configure attachments: the edge's limits and signed URLs,
// the storage every tier shares, and the expiry of unsent uploads.
type attachFlags struct {
	maxSize, quota                 int
	types                          string
	urlTTL, urlMaxTTL, uploadTO    time.Duration
	urlSecret                      secretFlags
	expiry                         time.Duration
	s3Endpoint, s3Bucket, s3Prefix string
	s3Region, s3AccessKey          string
	s3PathStyle                    bool
	s3Secret                       secretFlags
}

func (a *attachFlags) register(fs *cli.FlagSet, mode node.Mode) {
	if mode != node.ModeWorker {
		fs.Int(&a.maxSize, "attachments-max-size", "NATTER_ATTACHMENTS_MAX_SIZE", 25<<20, "largest attachment upload in bytes (a larger Content-Length is refused before the body is read)", cli.Min(1))
		fs.Int(&a.quota, "attachments-quota", "NATTER_ATTACHMENTS_QUOTA", 1<<30, "most attachment bytes one user may have stored (-1 = no quota)", cli.Min(-1))
		fs.String(&a.types, "attachments-types", "NATTER_ATTACHMENTS_TYPES", "", "allowed attachment content types, comma-separated (empty = the built-in list, docs/config.md)")
		fs.Duration(&a.uploadTO, "attachments-upload-timeout", "NATTER_ATTACHMENTS_UPLOAD_TIMEOUT", 5*time.Minute, "how long one upload may take to arrive, and one download to be sent", cli.Positive[time.Duration]())
		fs.Duration(&a.urlTTL, "attachments-url-ttl", "NATTER_ATTACHMENTS_URL_TTL", 10*time.Minute, "lifetime of a signed download URL when the client asks for none", cli.Positive[time.Duration]())
		fs.Duration(&a.urlMaxTTL, "attachments-url-max-ttl", "NATTER_ATTACHMENTS_URL_MAX_TTL", time.Hour, "longest lifetime a client may ask for a signed download URL", cli.Positive[time.Duration]())
		a.urlSecret.register(fs, "attachments-url-secret", "NATTER_ATTACHMENTS_URL_SECRET", "the HMAC key of signed download URLs, the same on every edge (empty = random per process)")
	}
	if mode != node.ModeEdge {
		fs.Duration(&a.expiry, "attachments-expiry", "NATTER_ATTACHMENTS_EXPIRY", 24*time.Hour, "uploads no message carries are deleted after this (attachgc role)", cli.Positive[time.Duration]())
	}
	fs.String(&a.s3Endpoint, "attachments-s3-endpoint", "NATTER_ATTACHMENTS_S3_ENDPOINT", "", "S3-compatible storage for attachments, http(s)://host[:port] (empty = the JetStream object store ATTACHBLOBS)")
	fs.String(&a.s3Bucket, "attachments-s3-bucket", "NATTER_ATTACHMENTS_S3_BUCKET", "", "S3 bucket of attachments (must exist)")
	fs.String(&a.s3Prefix, "attachments-s3-prefix", "NATTER_ATTACHMENTS_S3_PREFIX", "", "prefix of the attachments' object names in the bucket")
	fs.String(&a.s3Region, "attachments-s3-region", "NATTER_ATTACHMENTS_S3_REGION", "us-east-1", "S3 region of the bucket")
	fs.String(&a.s3AccessKey, "attachments-s3-access-key", "NATTER_ATTACHMENTS_S3_ACCESS_KEY", "", "S3 access key id")
	a.s3Secret.register(fs, "attachments-s3-secret-key", "NATTER_ATTACHMENTS_S3_SECRET_KEY", "the S3 secret access key")
	fs.Bool(&a.s3PathStyle, "attachments-s3-path-style", "NATTER_ATTACHMENTS_S3_PATH_STYLE", false, "address the bucket in the path (MinIO and most self-hosted servers) instead of the host name")
}

func (a *attachFlags) apply(cfg *node.Config, mode node.Mode) error {
	secret, err := a.s3Secret.get()
	if err != nil {
		return err
	}
	cfg.AttachS3.Endpoint, cfg.AttachS3.Bucket, cfg.AttachS3.Prefix = a.s3Endpoint, a.s3Bucket, a.s3Prefix
	cfg.AttachS3.Region, cfg.AttachS3.AccessKey, cfg.AttachS3.SecretKey, cfg.AttachS3.PathStyle = a.s3Region, a.s3AccessKey, secret, a.s3PathStyle
	cfg.AttachExpiry = a.expiry
	if mode == node.ModeWorker {
		return nil
	}
	us, err := a.urlSecret.get()
	if err != nil {
		return err
	}
	ac := &cfg.Edge.Attach
	ac.MaxSize, ac.Quota, ac.Types = int64(a.maxSize), int64(a.quota), cli.SplitList(a.types)
	ac.UploadTimeout, ac.URLTTL, ac.URLMaxTTL, ac.URLSecret = a.uploadTO, a.urlTTL, a.urlMaxTTL, []byte(us)
	return nil
}
