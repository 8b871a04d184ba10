package pushtest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/workers/push"
)

// WebPush stands in for a browser's push service.
type WebPush struct {
	recorder
	Subject string
	vapid   *ecdsa.PrivateKey
	subs    map[string]*subscriber // by name
}

type subscriber struct {
	key  *ecdh.PrivateKey
	auth []byte
}

// NewWebPush starts a Web Push stand-in with a fresh VAPID key.
func NewWebPush(tb testing.TB) *WebPush {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	s := &WebPush{Subject: "mailto:ops@natter.example", vapid: key, subs: map[string]*subscriber{}}
	s.start(tb, http.HandlerFunc(s.serve), true)
	return s
}

// Config is the push.WebPushConfig whose VAPID key this stand-in expects.
func (s *WebPush) Config() push.WebPushConfig {
	der, _ := x509.MarshalECPrivateKey(s.vapid)
	return push.WebPushConfig{PrivateKey: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), Subject: s.Subject, Client: s.Client()}
}

// Subscribe makes a browser subscription named name (its endpoint is
// <URL>/wp/<name>) with fresh keys.
func (s *WebPush) Subscribe(name string) protocol.PushSubscription {
	key, _ := ecdh.P256().GenerateKey(rand.Reader)
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	s.mu.Lock()
	s.subs[name] = &subscriber{key: key, auth: auth}
	s.mu.Unlock()
	return protocol.PushSubscription{Endpoint: s.URL() + "/wp/" + name, Keys: protocol.PushKeys{
		P256dh: base64.RawURLEncoding.EncodeToString(key.PublicKey().Bytes()), Auth: base64.RawURLEncoding.EncodeToString(auth)}}
}

func (s *WebPush) serve(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, "/wp/")
	s.mu.Lock()
	sub := s.subs[name]
	s.mu.Unlock()
	if r.Method != http.MethodPost || !ok || sub == nil {
		s.fail(w, http.StatusNotFound, "", "webpush: "+r.Method+" "+r.URL.Path)
		return
	}
	if err := s.checkVAPID(r.Header.Get("Authorization")); err != nil {
		s.fail(w, http.StatusUnauthorized, "", "webpush: "+err.Error())
		return
	}
	topic := r.Header.Get("Topic")
	switch {
	case r.Header.Get("Content-Encoding") != "aes128gcm":
		s.fail(w, http.StatusBadRequest, "", "webpush: Content-Encoding "+r.Header.Get("Content-Encoding"))
		return
	case r.Header.Get("TTL") == "":
		s.fail(w, http.StatusBadRequest, "", "webpush: no TTL")
		return
	case len(topic) > 32 || strings.Trim(topic, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "":
		s.fail(w, http.StatusBadRequest, "", "webpush: Topic "+topic)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 8192))
	plain, err := Decrypt(sub.key, sub.auth, body)
	if err != nil {
		s.fail(w, http.StatusBadRequest, "", "webpush: decrypt: "+err.Error())
		return
	}
	if s.answered(w, name) {
		return
	}
	s.record(Received{Device: name, Collapse: topic, Body: plain})
	w.WriteHeader(http.StatusCreated)
}

// checkVAPID checks "vapid t=<jwt>, k=<key>" (RFC 8292): k is the VAPID
// public key, t an ES256 JWT it verifies with aud = this origin, an exp
// within 24h and a sub.
func (s *WebPush) checkVAPID(h string) error {
	rest, ok := strings.CutPrefix(h, "vapid ")
	if !ok {
		return errors.New("Authorization is not vapid: " + h)
	}
	var t, k string
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.TrimSpace(part)
		if v, ok := strings.CutPrefix(part, "t="); ok {
			t = v
		} else if v, ok := strings.CutPrefix(part, "k="); ok {
			k = v
		}
	}
	kb, err := base64.RawURLEncoding.DecodeString(k)
	if err != nil || len(kb) != 65 {
		return errors.New("vapid k is not a P-256 key")
	}
	pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(kb[1:33]), Y: new(big.Int).SetBytes(kb[33:])}
	if !pub.Equal(&s.vapid.PublicKey) {
		return errors.New("vapid k is not the VAPID key")
	}
	var claims jwt.MapClaims
	if _, err := jwt.ParseWithClaims(t, &claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience(s.URL()), jwt.WithExpirationRequired()); err != nil {
		return errors.New("vapid t: " + err.Error())
	}
	exp, _ := claims.GetExpirationTime()
	if sub, _ := claims["sub"].(string); sub != s.Subject || exp == nil || time.Until(exp.Time) > 24*time.Hour {
		return errors.New("vapid t: sub or exp")
	}
	return nil
}

// Decrypt opens an RFC 8291 aes128gcm body for the subscription's private
// key and auth secret.
func Decrypt(ua *ecdh.PrivateKey, authSecret, body []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("short body")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if idlen != 65 || len(body) < 21+idlen || rs < 18 {
		return nil, errors.New("bad header")
	}
	asPubRaw, ct := body[21:21+idlen], body[21+idlen:]
	if len(ct) > int(rs) {
		return nil, errors.New("more than one record")
	}
	asPub, err := ecdh.P256().NewPublicKey(asPubRaw)
	if err != nil {
		return nil, err
	}
	shared, err := ua.ECDH(asPub)
	if err != nil {
		return nil, err
	}
	prkKey, _ := hkdf.Extract(sha256.New, shared, authSecret)
	ikm, _ := hkdf.Expand(sha256.New, prkKey, "WebPush: info\x00"+string(ua.PublicKey().Bytes())+string(asPubRaw), 32)
	prk, _ := hkdf.Extract(sha256.New, ikm, salt)
	cek, _ := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	nonce, _ := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	block, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(block)
	plain, err := gcm.Open(nil, nonce, ct, nil)
	if err != nil {
		return nil, err
	}
	plain = bytes.TrimRight(plain, "\x00")
	if len(plain) == 0 || plain[len(plain)-1] != 0x02 {
		return nil, errors.New("no last-record delimiter")
	}
	return plain[:len(plain)-1], nil
}
