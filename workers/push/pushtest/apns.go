package pushtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/natter-im/natter/workers/push"
)

// APNs stands in for Apple's push service.
type APNs struct {
	recorder
	KeyID, TeamID, Topic string
	key                  *ecdsa.PrivateKey
	keyPEM               []byte
}

// NewAPNs starts an APNs stand-in (TLS, HTTP/2) with a fresh signing key.
func NewAPNs(tb testing.TB) *APNs {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	s := &APNs{KeyID: "ABC123DEFG", TeamID: "TEAM123456", Topic: "im.natter.app", key: key,
		keyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})}
	s.start(tb, http.HandlerFunc(s.serve), true)
	return s
}

// Config is the push.APNsConfig that sends to this stand-in.
func (s *APNs) Config() push.APNsConfig {
	return push.APNsConfig{Key: s.keyPEM, KeyID: s.KeyID, TeamID: s.TeamID, Topic: s.Topic, Endpoint: s.URL(), Client: s.Client()}
}

// Token returns a fresh device token (64 hex digits).
func Token() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func reason(r string) string { return `{"reason":"` + r + `"}` }

func (s *APNs) serve(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 2 {
		s.fail(w, http.StatusBadRequest, reason("BadProtocol"), "apns: not HTTP/2: "+r.Proto)
		return
	}
	tok, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	if r.Method != http.MethodPost || !ok {
		s.fail(w, http.StatusNotFound, reason("BadPath"), "apns: "+r.Method+" "+r.URL.Path)
		return
	}
	if _, err := hex.DecodeString(tok); err != nil || len(tok) < 64 {
		s.fail(w, http.StatusBadRequest, reason("BadDeviceToken"), "apns: bad device token "+tok)
		return
	}
	auth, ok := strings.CutPrefix(r.Header.Get("authorization"), "bearer ")
	if !ok {
		s.fail(w, http.StatusForbidden, reason("MissingProviderToken"), "apns: no bearer provider token")
		return
	}
	var claims jwt.MapClaims
	t, err := jwt.ParseWithClaims(auth, &claims, func(t *jwt.Token) (any, error) { return &s.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuedAt())
	if err != nil || t.Header["kid"] != s.KeyID || claims["iss"] != s.TeamID {
		s.fail(w, http.StatusForbidden, reason("InvalidProviderToken"), "apns: provider token: "+errString(err))
		return
	}
	if iat, _ := claims.GetIssuedAt(); iat == nil || time.Since(iat.Time) > time.Hour {
		s.fail(w, http.StatusForbidden, reason("ExpiredProviderToken"), "apns: provider token too old")
		return
	}
	collapse := r.Header.Get("apns-collapse-id")
	switch {
	case r.Header.Get("apns-topic") != s.Topic:
		s.fail(w, http.StatusBadRequest, reason("BadTopic"), "apns: apns-topic "+r.Header.Get("apns-topic"))
		return
	case r.Header.Get("apns-push-type") != "alert":
		s.fail(w, http.StatusBadRequest, reason("InvalidPushType"), "apns: apns-push-type "+r.Header.Get("apns-push-type"))
		return
	case collapse == "" || len(collapse) > 64:
		s.fail(w, http.StatusBadRequest, reason("BadCollapseId"), "apns: apns-collapse-id "+collapse)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 8192))
	var p struct {
		APS struct {
			Alert struct {
				Body string `json:"body"`
			} `json:"alert"`
			Badge *uint64 `json:"badge"`
		} `json:"aps"`
	}
	if len(body) > 4096 || json.Unmarshal(body, &p) != nil || p.APS.Badge == nil {
		s.fail(w, http.StatusBadRequest, reason("BadPayload"), "apns: payload "+string(body))
		return
	}
	if s.answered(w, tok) {
		return
	}
	s.record(Received{Device: tok, Collapse: collapse, Body: body})
	w.Header().Set("apns-id", "00000000-0000-0000-0000-000000000000")
	w.WriteHeader(http.StatusOK)
}

func errString(err error) string {
	if err == nil {
		return "claims"
	}
	return err.Error()
}
