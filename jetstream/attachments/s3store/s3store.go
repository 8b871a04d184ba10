package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/natter-im/natter/jetstream/attachments"
)

// Config of an S3 store. Endpoint and Bucket are required.
type Config struct {
	// Endpoint is the S3 URL: "https://s3.eu-west-1.amazonaws.com",
	// "http://127.0.0.1:9000". Required.
	Endpoint string
	// Bucket holds the objects; it must exist. Required.
	Bucket string
	// Prefix is put before every object name ("natter/"). Empty means none.
	Prefix string
	// Region of the bucket. Empty means us-east-1.
	Region string
	// AccessKey and SecretKey sign the requests. Empty means anonymous.
	AccessKey, SecretKey string
	// PathStyle addresses the bucket in the path (MinIO and most
	// self-hosted servers) instead of the host name. False means the
	// client's default (virtual-host style for AWS).
	PathStyle bool
}

// partSize is the multipart part of an upload of unknown size: the memory
// one such upload holds (minio-go buffers a part). 5 MiB is S3's least.
const partSize = 5 << 20

// Store is an [attachments.Store] on S3.
type Store struct {
	c      *minio.Client
	bucket string
	prefix string
}

var _ attachments.Store = (*Store)(nil)

// New returns a store for cfg. It makes no request.
func New(cfg Config) (*Store, error) {
	c, err := NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("s3store: %w", err)
	}
	return &Store{c: c, bucket: cfg.Bucket, prefix: strings.TrimPrefix(cfg.Prefix, "/")}, nil
}

// NewClient checks cfg and returns its minio-go client: the one place a
// Config becomes a client (this package's Store and natter backup's S3
// target). Its errors name the setting.
func NewClient(cfg Config) (*minio.Client, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("s3 endpoint %q: want http(s)://host[:port]", cfg.Endpoint)
	}
	if cfg.Bucket == "" {
		return nil, errors.New("s3 bucket required")
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       u.Scheme == "https",
		Region:       region,
		BucketLookup: lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	return c, nil
}

// Put implements [attachments.Store].
func (s *Store) Put(ctx context.Context, name string, r io.Reader, size int64, contentType string) (int64, error) {
	info, err := s.c.PutObject(ctx, s.bucket, s.prefix+name, r, size, minio.PutObjectOptions{
		ContentType: contentType, PartSize: partSize,
		// No SHA-256 of the payload in the signature (UNSIGNED-PAYLOAD):
		// the edge already hashes the bytes once, and over plain HTTP
		// minio-go would otherwise sign chunk by chunk (aws-chunked), which
		// some S3-compatible servers store verbatim in multipart parts.
		DisableContentSha256: true,
	})
	if err != nil {
		return 0, fmt.Errorf("s3store: put %s: %w", name, err)
	}
	return info.Size, nil
}

// Get implements [attachments.Store] with a ranged GET.
func (s *Store) Get(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	var opts minio.GetObjectOptions
	switch {
	case n == 0:
		// An empty range: S3 has no way to ask for none.
		if _, err := s.c.StatObject(ctx, s.bucket, s.prefix+name, minio.StatObjectOptions{}); err != nil {
			return nil, s.err("get", name, err)
		}
		return io.NopCloser(strings.NewReader("")), nil
	case n > 0:
		if err := opts.SetRange(off, off+n-1); err != nil {
			return nil, fmt.Errorf("s3store: get %s: %w", name, err)
		}
	case off > 0:
		if err := opts.SetRange(off, 0); err != nil {
			return nil, fmt.Errorf("s3store: get %s: %w", name, err)
		}
	}
	obj, err := s.c.GetObject(ctx, s.bucket, s.prefix+name, opts)
	if err != nil {
		return nil, s.err("get", name, err)
	}
	// GetObject is lazy: the first read (here, a stat) tells a missing object.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		return nil, s.err("get", name, err)
	}
	return obj, nil
}

// Delete implements [attachments.Store].
func (s *Store) Delete(ctx context.Context, name string) error {
	err := s.c.RemoveObject(ctx, s.bucket, s.prefix+name, minio.RemoveObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		return fmt.Errorf("s3store: delete %s: %w", name, err)
	}
	return nil
}

func (s *Store) err(op, name string, err error) error {
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return fmt.Errorf("s3store: %s %s: %w", op, name, attachments.ErrNotFound)
	}
	return fmt.Errorf("s3store: %s %s: %w", op, name, err)
}
