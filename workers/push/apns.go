package push

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/natter-im/natter/jetstream/pushreg"
)

// APNs endpoints.
const (
	APNsProduction = "https://api.push.apple.com"
	APNsSandbox    = "https://api.sandbox.push.apple.com"
)

// APNsConfig configures [APNs] (token-based provider authentication).
type APNsConfig struct {
	// Key is the signing key from Apple (.p8: PEM, PKCS#8, P-256).
	// Required.
	Key []byte
	// KeyID is the key's id (the JWT's kid), TeamID the developer team
	// (the JWT's iss). Required.
	KeyID, TeamID string
	// Topic is the app's bundle id (apns-topic). Required.
	Topic string
	// Endpoint is the APNs server. Empty means APNsProduction.
	Endpoint string
	// TokenTTL is how long one provider token is used (Apple refuses one
	// older than an hour and asks that it is renewed at most every 20
	// minutes). Zero means 50m.
	TokenTTL time.Duration
	// Client sends the requests (HTTP/2). Nil means a client of its own.
	Client *http.Client
}

// APNs sends through Apple's push notification service: POST
// /3/device/<token> over HTTP/2 with a bearer ES256 provider token.
type APNs struct {
	cfg APNsConfig
	key *ecdsa.PrivateKey

	mu     sync.Mutex
	token  string
	issued time.Time
}

var _ Provider = (*APNs)(nil)

// NewAPNs checks cfg and parses its key.
func NewAPNs(cfg APNsConfig) (*APNs, error) {
	if cfg.KeyID == "" || cfg.TeamID == "" || cfg.Topic == "" {
		return nil, fmt.Errorf("%w: apns: key id, team id and topic are required", ErrConfig)
	}
	key, err := jwt.ParseECPrivateKeyFromPEM(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: apns: key: %w", ErrConfig, err)
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = APNsProduction
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 50 * time.Minute
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 16}}
	}
	return &APNs{cfg: cfg, key: key}, nil
}

// providerToken returns the cached token, or a new one when it is older
// than TokenTTL (or stale is the cached one, refused by APNs).
func (a *APNs) providerToken(stale string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token != "" && a.token != stale && time.Since(a.issued) < a.cfg.TokenTTL {
		return a.token, nil
	}
	now := time.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": a.cfg.TeamID, "iat": now.Unix()})
	t.Header["kid"] = a.cfg.KeyID
	s, err := t.SignedString(a.key)
	if err != nil {
		return "", fmt.Errorf("push: apns: sign: %w", err)
	}
	a.token, a.issued = s, now
	return s, nil
}

type apsAlert struct {
	Body string `json:"body"`
}

type aps struct {
	Alert    apsAlert `json:"alert"`
	Badge    uint64   `json:"badge"`
	Sound    string   `json:"sound"`
	ThreadID string   `json:"thread-id"`
}

type natterData struct {
	Conv string `json:"conv"`
	Seq  uint64 `json:"seq"`
	From string `json:"from"`
	ID   string `json:"id"`
}

// Send posts n to the device.
func (a *APNs) Send(ctx context.Context, d pushreg.Device, n Notification) error {
	body, err := json.Marshal(struct {
		APS    aps        `json:"aps"`
		Natter natterData `json:"natter"`
	}{aps{Alert: apsAlert{Body: n.Text}, Badge: n.Badge, Sound: "default", ThreadID: n.Conv},
		natterData{Conv: n.Conv, Seq: n.Seq, From: n.From, ID: n.ID}})
	if err != nil {
		return err
	}
	stale := ""
	for attempt := 0; ; attempt++ {
		tok, err := a.providerToken(stale)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.cfg.Endpoint+"/3/device/"+d.Token, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("%w: %w", ErrRejected, err)
		}
		req.Header.Set("authorization", "bearer "+tok)
		req.Header.Set("apns-topic", a.cfg.Topic)
		req.Header.Set("apns-push-type", "alert")
		req.Header.Set("apns-priority", "10")
		req.Header.Set("apns-collapse-id", n.Conv)
		req.Header.Set("apns-expiration", strconv.FormatInt(time.Now().Add(24*time.Hour).Unix(), 10))
		req.Header.Set("content-type", "application/json")
		expired := false
		err = post(a.cfg.Client, req, func(status int, b []byte) error {
			var r struct {
				Reason string `json:"reason"`
			}
			_ = json.Unmarshal(b, &r)
			switch {
			case status == http.StatusGone, r.Reason == "BadDeviceToken", r.Reason == "DeviceTokenNotForTopic", r.Reason == "Unregistered":
				return ErrUnregistered
			case status == http.StatusForbidden && (r.Reason == "ExpiredProviderToken" || r.Reason == "InvalidProviderToken"):
				expired = true
			}
			return nil
		})
		if expired && attempt == 0 {
			stale = tok // once more with a fresh token
			continue
		}
		return err
	}
}
