package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

// attachPath is the REST path of attachments (edge.AttachPath; the client
// does not import the edge).
const attachPath = "/v1/attachments"

// httpBase is the HTTP origin of the first edge: its WebSocket URL with
// ws(s) made http(s) and the path dropped.
func (c *Client) httpBase() (string, error) {
	u, err := url.Parse(c.cfg.URLs[0])
	if err != nil {
		return "", fmt.Errorf("client: attachments: %w", err)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	return u.Scheme + "://" + u.Host, nil
}

func (c *Client) bearer(ctx context.Context) (string, error) {
	if c.cfg.TokenFunc != nil {
		t, err := c.cfg.TokenFunc(ctx)
		if err != nil {
			return "", fmt.Errorf("client: token: %w", err)
		}
		return t, nil
	}
	return c.cfg.Token, nil
}

// Upload sends a file to the edge (POST /v1/attachments) and returns the
// attachment to send with [WithAttachments]. r is streamed, never held
// whole; size is its length (-1 when unknown: the body goes chunked),
// contentType its type (on the edge's allow-list; an image must be that
// image), name its file name. Refusals are an [*Error] with op "upload":
// too_big, quota_exceeded, unsupported_type, bad_frame.
func (c *Client) Upload(ctx context.Context, r io.Reader, size int64, contentType, name string) (natter.Attachment, error) {
	base, err := c.httpBase()
	if err != nil {
		return natter.Attachment{}, err
	}
	tok, err := c.bearer(ctx)
	if err != nil {
		return natter.Attachment{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+attachPath+"?name="+url.QueryEscape(name), r)
	if err != nil {
		return natter.Attachment{}, fmt.Errorf("client: upload: %w", err)
	}
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return natter.Attachment{}, fmt.Errorf("client: upload: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return natter.Attachment{}, restErr("upload", resp)
	}
	var a natter.Attachment
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&a); err != nil {
		return natter.Attachment{}, fmt.Errorf("client: upload: answer: %w", err)
	}
	return a, nil
}

// Download is an attachment being read: its bytes in Body (close it), the
// type, the full size and the ETag.
type Download struct {
	Body io.ReadCloser
	// Type is the Content-Type.
	Type string
	// Size of the whole file; Length of what Body holds (less for a range).
	Size, Length int64
	// ETag identifies the bytes (for If-None-Match).
	ETag string
}

// DownloadOption changes a [Client.Download].
type DownloadOption func(*http.Request)

// WithRange asks for n bytes from off (n < 0: to the end).
func WithRange(off, n int64) DownloadOption {
	return func(r *http.Request) {
		v := "bytes=" + strconv.FormatInt(off, 10) + "-"
		if n >= 0 {
			v += strconv.FormatInt(off+n-1, 10)
		}
		r.Header.Set("Range", v)
	}
}

// Thumbnail asks for the thumbnail instead of the file (404 not_found
// until the thumbs role made it).
func Thumbnail() DownloadOption {
	return func(r *http.Request) { r.URL.Path += "/thumb" }
}

// Download reads attachment id (GET /v1/attachments/{id}); the user must
// be its uploader or a member of a conversation it was sent in (else an
// [*Error] forbidden).
func (c *Client) Download(ctx context.Context, id string, opts ...DownloadOption) (*Download, error) {
	base, err := c.httpBase()
	if err != nil {
		return nil, err
	}
	tok, err := c.bearer(ctx)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+attachPath+"/"+url.PathEscape(id), nil)
	if err != nil {
		return nil, fmt.Errorf("client: download: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	for _, o := range opts {
		o(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: download: %w", err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		defer resp.Body.Close()
		return nil, restErr("download", resp)
	}
	d := &Download{Body: resp.Body, Type: resp.Header.Get("Content-Type"), Size: resp.ContentLength, Length: resp.ContentLength, ETag: resp.Header.Get("ETag")}
	if cr := resp.Header.Get("Content-Range"); cr != "" {
		if i := strings.LastIndexByte(cr, '/'); i >= 0 {
			d.Size, _ = strconv.ParseInt(cr[i+1:], 10, 64)
		}
	}
	return d, nil
}

// restErr reads a REST error answer into an [*Error].
func restErr(op string, resp *http.Response) error {
	var e struct {
		Code protocol.Code `json:"code"`
		Msg  string        `json:"msg"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e); err != nil || e.Code == "" {
		return &Error{Op: op, Code: protocol.CodeInternal, Msg: "HTTP " + resp.Status}
	}
	return &Error{Op: op, Code: e.Code, Msg: e.Msg}
}
