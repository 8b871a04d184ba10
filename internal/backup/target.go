package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/natter-im/natter/jetstream/attachments/s3store"
)

// Target is where backups live: a directory ([Dir]) or an S3 bucket
// ([S3]). Names are slash-separated paths relative to the target's root.
type Target interface {
	// Put stores what r yields under name, replacing what was there.
	Put(ctx context.Context, name string, r io.Reader) error
	// Open reads name; a missing name is an error wrapping fs.ErrNotExist.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// List returns the names under prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// String names the target in messages.
	String() string
}

// Dir is a [Target] on a directory (created as needed).
type Dir string

var _ Target = Dir("")

// Put implements [Target]: it writes a temporary file and renames it, so a
// name is complete or absent.
func (d Dir) Put(ctx context.Context, name string, r io.Reader) error {
	path := filepath.Join(string(d), filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("backup: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("backup: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("backup: write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// Open implements [Target].
func (d Dir) Open(_ context.Context, name string) (io.ReadCloser, error) {
	f, err := os.Open(filepath.Join(string(d), filepath.FromSlash(name)))
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return f, nil
}

// List implements [Target].
func (d Dir) List(_ context.Context, prefix string) ([]string, error) {
	var names []string
	root := string(d)
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path == root {
				return fs.SkipAll
			}
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".tmp-") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if rel = filepath.ToSlash(rel); strings.HasPrefix(rel, prefix) {
			names = append(names, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("backup: list %s: %w", root, err)
	}
	sort.Strings(names)
	return names, nil
}

func (d Dir) String() string { return string(d) }

// S3Config locates an S3-compatible bucket: the same settings as the
// attachments' S3 storage (Endpoint and Bucket required; Region empty means
// us-east-1; PathStyle for MinIO and most self-hosted servers).
type S3Config = s3store.Config

// S3 is a [Target] on an S3-compatible bucket (minio-go, the library of
// the attachments' S3 storage).
type S3 struct {
	c      *minio.Client
	cfg    S3Config
	prefix string
}

var _ Target = (*S3)(nil)

// s3PartSize is the multipart part size of an upload: the memory one
// upload holds. Files are streamed, their size unknown beforehand.
const s3PartSize = 16 << 20

// NewS3 returns the target for cfg. It makes no request.
func NewS3(cfg S3Config) (*S3, error) {
	c, err := s3store.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return &S3{c: c, cfg: cfg, prefix: strings.TrimPrefix(cfg.Prefix, "/")}, nil
}

// Put implements [Target].
func (s *S3) Put(ctx context.Context, name string, r io.Reader) error {
	_, err := s.c.PutObject(ctx, s.cfg.Bucket, s.prefix+name, r, -1, minio.PutObjectOptions{
		PartSize: s3PartSize, DisableContentSha256: true, ContentType: "application/octet-stream",
	})
	if err != nil {
		return fmt.Errorf("backup: s3 put %s: %w", name, err)
	}
	return nil
}

// Open implements [Target].
func (s *S3) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	obj, err := s.c.GetObject(ctx, s.cfg.Bucket, s.prefix+name, minio.GetObjectOptions{})
	if err == nil {
		_, err = obj.Stat()
		if err != nil {
			obj.Close()
		}
	}
	if err != nil {
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return nil, fmt.Errorf("backup: s3 get %s: %w", name, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("backup: s3 get %s: %w", name, err)
	}
	return obj, nil
}

// List implements [Target].
func (s *S3) List(ctx context.Context, prefix string) ([]string, error) {
	var names []string
	for o := range s.c.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("backup: s3 list: %w", o.Err)
		}
		names = append(names, strings.TrimPrefix(o.Key, s.prefix))
	}
	sort.Strings(names)
	return names, nil
}

func (s *S3) String() string { return "s3 " + s.cfg.Endpoint + "/" + s.cfg.Bucket + "/" + s.prefix }
