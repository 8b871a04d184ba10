package push

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/natter-im/natter/jetstream/pushreg"
)

// DefaultText is a notification's text when previews are off.
const DefaultText = "New message"

// Notification is what one device is told.
type Notification struct {
	// Conv, Seq, From and ID name the message (ID: its message id).
	Conv string
	Seq  uint64
	From string
	ID   string
	// Text is the body (Config.Preview) or DefaultText.
	Text string
	// Badge is the user's unread count over every conversation.
	Badge uint64
}

// Provider sends notifications through one push service. Send returns nil,
// [ErrUnregistered], [ErrRejected] (wrapped) or a [*RetryError].
type Provider interface {
	Send(ctx context.Context, d pushreg.Device, n Notification) error
}

// maxErrBody is how much of a provider's error answer is read.
const maxErrBody = 4 << 10

// post sends req and classifies the answer of services that use plain
// HTTP statuses: 2xx nil; 429 and 5xx a *RetryError (with Retry-After);
// other statuses go to other, which may return ErrUnregistered, and else
// ErrRejected.
func post(client *http.Client, req *http.Request, other func(status int, body []byte) error) error {
	resp, err := client.Do(req)
	if err != nil {
		if req.Context().Err() != nil {
			return req.Context().Err()
		}
		return &RetryError{Err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrBody))
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return nil
	case s == http.StatusTooManyRequests || s >= 500:
		return &RetryError{After: retryAfter(resp.Header, time.Now()), Err: fmt.Errorf("status %d: %.200s", s, body)}
	default:
		if err := other(s, body); err != nil {
			return err
		}
		return fmt.Errorf("%w: status %d: %.200s", ErrRejected, s, body)
	}
}

// retryAfter reads a Retry-After header: seconds or an HTTP date (zero:
// none, or in the past).
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
