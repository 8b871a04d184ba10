package push

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/natter-im/natter/jetstream/pushreg"
)

// FCMEndpoint is the FCM HTTP v1 API.
const FCMEndpoint = "https://fcm.googleapis.com"

// fcmScope is the OAuth2 scope of FCM sends.
const fcmScope = "https://www.googleapis.com/auth/firebase.messaging"

// FCMConfig configures [FCM].
type FCMConfig struct {
	// ServiceAccount is the Google service account key file (JSON, with
	// project_id, client_email, private_key and token_uri). Required.
	ServiceAccount []byte
	// Endpoint is the FCM API. Empty means FCMEndpoint.
	Endpoint string
	// Client sends the requests. Nil means a client of its own.
	Client *http.Client
}

// FCM sends through Firebase Cloud Messaging's HTTP v1 API: POST
// /v1/projects/<project>/messages:send with an OAuth2 access token, got
// from the service account's token URI with a signed JWT (the JWT-bearer
// grant, RFC 7523) and used until shortly before it expires.
type FCM struct {
	cfg      FCMConfig
	project  string
	email    string
	tokenURI string
	key      *rsa.PrivateKey

	mu      sync.Mutex
	access  string
	expires time.Time
}

var _ Provider = (*FCM)(nil)

// NewFCM parses the service account.
func NewFCM(cfg FCMConfig) (*FCM, error) {
	var sa struct {
		ProjectID   string `json:"project_id"`
		ClientEmail string `json:"client_email"`
		PrivateKey  string `json:"private_key"`
		TokenURI    string `json:"token_uri"`
	}
	if err := json.Unmarshal(cfg.ServiceAccount, &sa); err != nil {
		return nil, fmt.Errorf("%w: fcm: service account is not JSON: %w", ErrConfig, err)
	}
	if sa.ProjectID == "" || sa.ClientEmail == "" || sa.PrivateKey == "" || sa.TokenURI == "" {
		return nil, fmt.Errorf("%w: fcm: service account needs project_id, client_email, private_key and token_uri", ErrConfig)
	}
	key, err := jwt.ParseRSAPrivateKeyFromPEM([]byte(sa.PrivateKey))
	if err != nil {
		return nil, fmt.Errorf("%w: fcm: private_key: %w", ErrConfig, err)
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = FCMEndpoint
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 16}}
	}
	return &FCM{cfg: cfg, project: sa.ProjectID, email: sa.ClientEmail, tokenURI: sa.TokenURI, key: key}, nil
}

// accessToken returns the cached access token, or exchanges a new one
// when it expires within a minute (or stale is the cached one, refused).
func (f *FCM) accessToken(ctx context.Context, stale string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.access != "" && f.access != stale && time.Until(f.expires) > time.Minute {
		return f.access, nil
	}
	now := time.Now()
	assertion, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": f.email, "scope": fcmScope, "aud": f.tokenURI, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}).SignedString(f.key)
	if err != nil {
		return "", fmt.Errorf("push: fcm: sign: %w", err)
	}
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.tokenURI, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("%w: fcm: token uri: %w", ErrConfig, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := f.cfg.Client.Do(req)
	if err != nil {
		return "", &RetryError{Err: fmt.Errorf("fcm: token exchange: %w", err)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		// A refused exchange (a revoked key) fails every send until the
		// settings are fixed: retried, so the entries dead-letter rather
		// than vanish.
		return "", &RetryError{After: retryAfter(resp.Header, now), Err: fmt.Errorf("fcm: token exchange: status %d: %.200s", resp.StatusCode, body)}
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return "", &RetryError{Err: fmt.Errorf("fcm: token exchange: no access_token in the answer")}
	}
	if tr.ExpiresIn <= 0 {
		tr.ExpiresIn = 3600
	}
	f.access, f.expires = tr.AccessToken, now.Add(time.Duration(tr.ExpiresIn)*time.Second)
	return f.access, nil
}

type fcmMessage struct {
	Token        string            `json:"token"`
	Notification fcmNotification   `json:"notification"`
	Data         map[string]string `json:"data"`
	Android      fcmAndroid        `json:"android"`
	APNs         fcmAPNs           `json:"apns"`
	WebPush      fcmWebPush        `json:"webpush"`
}

type fcmNotification struct {
	Body string `json:"body"`
}

type fcmAndroid struct {
	CollapseKey  string                 `json:"collapse_key"`
	Notification fcmAndroidNotification `json:"notification"`
}

type fcmAndroidNotification struct {
	Tag               string `json:"tag"`
	NotificationCount uint64 `json:"notification_count"`
}

type fcmAPNs struct {
	Headers map[string]string `json:"headers"`
	Payload struct {
		APS struct {
			Badge uint64 `json:"badge"`
		} `json:"aps"`
	} `json:"payload"`
}

type fcmWebPush struct {
	Headers map[string]string `json:"headers"`
}

// Send posts n to the device.
func (f *FCM) Send(ctx context.Context, d pushreg.Device, n Notification) error {
	m := fcmMessage{
		Token:        d.Token,
		Notification: fcmNotification{Body: n.Text},
		Data: map[string]string{"conv": n.Conv, "seq": strconv.FormatUint(n.Seq, 10), "from": n.From, "id": n.ID,
			"badge": strconv.FormatUint(n.Badge, 10)},
		Android: fcmAndroid{CollapseKey: n.Conv, Notification: fcmAndroidNotification{Tag: n.Conv, NotificationCount: n.Badge}},
		APNs:    fcmAPNs{Headers: map[string]string{"apns-collapse-id": n.Conv}},
		WebPush: fcmWebPush{Headers: map[string]string{"Topic": topic(n.Conv)}},
	}
	m.APNs.Payload.APS.Badge = n.Badge
	body, err := json.Marshal(struct {
		Message fcmMessage `json:"message"`
	}{m})
	if err != nil {
		return err
	}
	stale := ""
	for attempt := 0; ; attempt++ {
		tok, err := f.accessToken(ctx, stale)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.cfg.Endpoint+"/v1/projects/"+url.PathEscape(f.project)+"/messages:send", bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("%w: %w", ErrRejected, err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		unauthorized := false
		err = post(f.cfg.Client, req, func(status int, b []byte) error {
			if status == http.StatusNotFound || fcmErrorCode(b) == "UNREGISTERED" {
				return ErrUnregistered
			}
			unauthorized = status == http.StatusUnauthorized
			return nil
		})
		if unauthorized && attempt == 0 {
			stale = tok // once more with a fresh access token
			continue
		}
		return err
	}
}

// fcmErrorCode is the FCM error code of an error answer
// (error.details[].errorCode), or "".
func fcmErrorCode(body []byte) string {
	var e struct {
		Error struct {
			Status  string `json:"status"`
			Details []struct {
				ErrorCode string `json:"errorCode"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	for _, d := range e.Error.Details {
		if d.ErrorCode != "" {
			return d.ErrorCode
		}
	}
	return e.Error.Status
}
