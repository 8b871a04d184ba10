package push

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/natter-im/natter/jetstream/pushreg"
)

// WebPushConfig configures [WebPush].
type WebPushConfig struct {
	// PrivateKey is the VAPID key: PEM (EC P-256, SEC 1 or PKCS#8) or the
	// base64url private scalar that web-push tools print. Required; the
	// browsers' subscriptions must have been made with its public key
	// (applicationServerKey).
	PrivateKey []byte
	// Subject is the VAPID contact, a mailto: or https: URL. Required.
	Subject string
	// TTL is how long a push service keeps an undelivered notification.
	// Zero means 24h.
	TTL time.Duration
	// Client sends the requests. Nil means a client of its own.
	Client *http.Client
}

// WebPush sends to browsers' push services: POST to the subscription's
// endpoint with a VAPID authorization (RFC 8292) and the payload
// encrypted for the subscription (RFC 8291, aes128gcm).
type WebPush struct {
	cfg    WebPushConfig
	key    *ecdsa.PrivateKey
	public string // base64url, uncompressed

	mu    sync.Mutex
	vapid map[string]vapidToken // by audience
}

type vapidToken struct {
	jwt     string
	expires time.Time
}

var _ Provider = (*WebPush)(nil)

// vapidLife is the exp of a VAPID JWT (at most 24h, RFC 8292); one is
// reused until an hour before it.
const vapidLife = 12 * time.Hour

// NewWebPush parses the VAPID key.
func NewWebPush(cfg WebPushConfig) (*WebPush, error) {
	if !strings.HasPrefix(cfg.Subject, "mailto:") && !strings.HasPrefix(cfg.Subject, "https:") {
		return nil, fmt.Errorf("%w: webpush: the VAPID subject must be a mailto: or https: URL", ErrConfig)
	}
	key, err := vapidKey(cfg.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("%w: webpush: VAPID key: %w", ErrConfig, err)
	}
	pub, err := key.PublicKey.ECDH()
	if err != nil {
		return nil, fmt.Errorf("%w: webpush: VAPID key: %w", ErrConfig, err)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 24 * time.Hour
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 16}}
	}
	return &WebPush{cfg: cfg, key: key, public: base64.RawURLEncoding.EncodeToString(pub.Bytes()), vapid: map[string]vapidToken{}}, nil
}

func vapidKey(b []byte) (*ecdsa.PrivateKey, error) {
	if bytes.Contains(b, []byte("-----BEGIN")) {
		return jwt.ParseECPrivateKeyFromPEM(b)
	}
	d, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(string(b)), "="))
	if err != nil {
		return nil, fmt.Errorf("neither PEM nor base64url: %w", err)
	}
	return ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
}

// PublicKey is the VAPID public key (base64url, uncompressed): the
// applicationServerKey browsers subscribe with.
func (w *WebPush) PublicKey() string { return w.public }

// authorization returns the VAPID Authorization header for endpoint's
// push service (its origin is the JWT's aud).
func (w *WebPush) authorization(endpoint *url.URL) (string, error) {
	aud := endpoint.Scheme + "://" + endpoint.Host
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.vapid[aud]
	if !ok || time.Until(t.expires) < time.Hour {
		exp := time.Now().Add(vapidLife)
		s, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"aud": aud, "exp": exp.Unix(), "sub": w.cfg.Subject}).SignedString(w.key)
		if err != nil {
			return "", fmt.Errorf("push: webpush: sign: %w", err)
		}
		if len(w.vapid) > 1024 { // a bound on the audiences kept
			clear(w.vapid)
		}
		t = vapidToken{jwt: s, expires: exp}
		w.vapid[aud] = t
	}
	return "vapid t=" + t.jwt + ", k=" + w.public, nil
}

// Send posts n, encrypted, to the device's subscription.
func (w *WebPush) Send(ctx context.Context, d pushreg.Device, n Notification) error {
	u, err := url.Parse(d.Endpoint)
	if err != nil || u.Scheme != "https" {
		return fmt.Errorf("%w: endpoint %q", ErrRejected, d.Endpoint)
	}
	plain, err := json.Marshal(struct {
		natterData
		Text  string `json:"text"`
		Badge uint64 `json:"badge"`
	}{natterData{Conv: n.Conv, Seq: n.Seq, From: n.From, ID: n.ID}, n.Text, n.Badge})
	if err != nil {
		return err
	}
	body, err := Encrypt(d.P256dh, d.Auth, plain)
	if err != nil {
		// A subscription with broken keys can never be sent to.
		return fmt.Errorf("%w: %w", ErrUnregistered, err)
	}
	auth, err := w.authorization(u)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRejected, err)
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Encoding", "aes128gcm")
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("TTL", strconv.FormatInt(int64(w.cfg.TTL/time.Second), 10))
	req.Header.Set("Urgency", "high")
	req.Header.Set("Topic", topic(n.Conv))
	return post(w.cfg.Client, req, func(status int, _ []byte) error {
		if status == http.StatusNotFound || status == http.StatusGone {
			return ErrUnregistered
		}
		return nil
	})
}

// topic is the Web Push Topic of a conversation: at most 32 characters of
// the base64url alphabet (RFC 8030), so a hash of the id.
func topic(conv string) string {
	h := sha256.Sum256([]byte(conv))
	return base64.RawURLEncoding.EncodeToString(h[:])[:32]
}

// recordSize is the rs of the aes128gcm header: one record holds the
// whole payload (push services take at most 4,096 bytes).
const recordSize = 4096

// Encrypt encrypts plain for a subscription's keys (p256dh and auth,
// base64url) as RFC 8291 describes: an ephemeral ECDH key, HKDF with the
// auth secret, one aes128gcm record (RFC 8188) whose header carries the
// salt and the ephemeral public key.
func Encrypt(p256dh, authSecret string, plain []byte) ([]byte, error) {
	uaRaw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(p256dh, "="))
	if err != nil {
		return nil, fmt.Errorf("p256dh: %w", err)
	}
	ua, err := ecdh.P256().NewPublicKey(uaRaw)
	if err != nil {
		return nil, fmt.Errorf("p256dh: %w", err)
	}
	secret, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(authSecret, "="))
	if err != nil || len(secret) != 16 {
		return nil, fmt.Errorf("auth: want 16 bytes base64url")
	}
	as, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	shared, err := as.ECDH(ua)
	if err != nil {
		return nil, err
	}
	asPub := as.PublicKey().Bytes()
	prkKey, err := hkdf.Extract(sha256.New, shared, secret)
	if err != nil {
		return nil, err
	}
	ikm, err := hkdf.Expand(sha256.New, prkKey, "WebPush: info\x00"+string(uaRaw)+string(asPub), 32)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if len(plain)+1+gcm.Overhead() > recordSize {
		return nil, fmt.Errorf("payload of %d bytes does not fit one record", len(plain))
	}
	out := make([]byte, 0, 16+4+1+len(asPub)+len(plain)+1+gcm.Overhead())
	out = append(out, salt...)
	out = binary.BigEndian.AppendUint32(out, recordSize)
	out = append(out, byte(len(asPub)))
	out = append(out, asPub...)
	padded := append(append(make([]byte, 0, len(plain)+1), plain...), 0x02) // the last record's delimiter
	return gcm.Seal(out, nonce, padded, nil), nil
}
