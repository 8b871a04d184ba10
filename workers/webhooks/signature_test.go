package webhooks_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/natter-im/natter/workers/webhooks"
)

func TestVerify(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"ev_1","kind":"message_created"}`)
	now := strconv.FormatInt(time.Now().Unix(), 10)
	old := strconv.FormatInt(time.Now().Add(-10*time.Minute).Unix(), 10)
	sig := webhooks.Sign(testSecret, now, body)
	tests := []struct {
		name      string
		secret    string
		ts        string
		body      string
		header    string
		tolerance time.Duration
		want      error
	}{
		{"valid", testSecret, now, string(body), sig, 0, nil},
		{"valid among others", testSecret, now, string(body), "v0=abc, v1=00," + sig, 0, nil},
		{"rotation: old secret listed first", testSecret, now, string(body), webhooks.Sign("another-secret-0123", now, body) + "," + sig, 0, nil},
		{"wrong secret", "another-secret-0123", now, string(body), sig, 0, webhooks.ErrSignature},
		{"body changed", testSecret, now, string(body) + " ", sig, 0, webhooks.ErrSignature},
		{"timestamp changed", testSecret, strconv.FormatInt(time.Now().Unix()-1, 10), string(body), sig, 0, webhooks.ErrSignature},
		{"too old", testSecret, old, string(body), webhooks.Sign(testSecret, old, body), 0, webhooks.ErrTimestampTolerance},
		{"too old, check off", testSecret, old, string(body), webhooks.Sign(testSecret, old, body), -1, nil},
		{"old within a wider tolerance", testSecret, old, string(body), webhooks.Sign(testSecret, old, body), time.Hour, nil},
		{"timestamp not a number", testSecret, "yesterday", string(body), sig, 0, webhooks.ErrMalformedSignature},
		{"no v1 signature", testSecret, now, string(body), "v2=abcd", 0, webhooks.ErrMalformedSignature},
		{"empty header", testSecret, now, string(body), "", 0, webhooks.ErrMalformedSignature},
		{"not hex", testSecret, now, string(body), "v1=zz", 0, webhooks.ErrMalformedSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := webhooks.Verify(tt.secret, tt.ts, []byte(tt.body), tt.header, tt.tolerance)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify: %v, want %v", err, tt.want)
			}
		})
	}
}

// The scheme, written out for receivers in other languages.
func TestSignKnownAnswer(t *testing.T) {
	t.Parallel()
	// Computed independently: python3 -c 'import hmac, hashlib; print(hmac.new(
	// b"0123456789abcdef", b"1700000000.{\"id\":\"ev_1\"}", hashlib.sha256).hexdigest())'
	const want = "v1=364e247a24ac3a011b7832223e41c71f19204eb76aacf9c3bb6130356541994c"
	got := webhooks.Sign("0123456789abcdef", "1700000000", []byte(`{"id":"ev_1"}`))
	if got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(testSecret, []byte(`{"id":"ev_1"}`), "v1=00")
	f.Add("", []byte{}, "")
	f.Add("s", []byte("\x00\xff"), "v1=, v1=zz,,")
	f.Fuzz(func(t *testing.T, secret string, body []byte, header string) {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		if err := webhooks.Verify(secret, ts, body, webhooks.Sign(secret, ts, body), time.Minute); err != nil {
			t.Fatalf("own signature rejected: %v", err)
		}
		// Arbitrary headers never panic, and are accepted only if they
		// carry the right signature.
		if err := webhooks.Verify(secret, ts, body, header, time.Minute); err == nil {
			if webhooks.Verify(secret, ts, append(body, 'x'), header, time.Minute) == nil {
				t.Fatalf("header %q verifies two bodies", header)
			}
		}
	})
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base       time.Duration
		n          int
		retryAfter time.Duration
		want       time.Duration
	}{
		{time.Second, 1, 0, time.Second},
		{time.Second, 2, 0, 2 * time.Second},
		{time.Second, 4, 0, 8 * time.Second},
		{time.Second, 9, 0, 256 * time.Second},
		{time.Second, 10, 0, webhooks.MaxBackoff},
		{time.Second, 1000, 0, webhooks.MaxBackoff},
		{time.Hour, 1, 0, webhooks.MaxBackoff},
		{time.Second, 1, 30 * time.Second, 30 * time.Second},
		{time.Second, 6, 2 * time.Second, 32 * time.Second},
		{time.Second, 1, time.Hour, webhooks.MaxBackoff},
	}
	for _, tt := range tests {
		if got := webhooks.Backoff(tt.base, tt.n, tt.retryAfter); got != tt.want {
			t.Errorf("backoff(%s, %d, %s) = %s, want %s", tt.base, tt.n, tt.retryAfter, got, tt.want)
		}
	}
	for v, want := range map[string]time.Duration{
		"": 0, "7": 7 * time.Second, "-1": 0, "soon": 0, "100000": webhooks.MaxBackoff,
		time.Now().Add(-time.Hour).UTC().Format(http1123): 0,
	} {
		if got := webhooks.ParseRetryAfter(v); got != want {
			t.Errorf("ParseRetryAfter(%q) = %s, want %s", v, got, want)
		}
	}
	if got := webhooks.ParseRetryAfter(time.Now().Add(time.Minute).UTC().Format(http1123)); got < 50*time.Second || got > time.Minute {
		t.Errorf("ParseRetryAfter(date in a minute) = %s", got)
	}
}

const http1123 = "Mon, 02 Jan 2006 15:04:05 GMT"
