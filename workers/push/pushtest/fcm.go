package pushtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/natter-im/natter/workers/push"
)

// FCM stands in for FCM's HTTP v1 API and Google's OAuth2 token endpoint.
type FCM struct {
	recorder
	Project   string
	Email     string
	key       *rsa.PrivateKey
	issued    atomic.Int64 // access tokens issued
	ExpiresIn int          // the access tokens' expires_in; 0 means 3600
	tokens    map[string]bool
}

// NewFCM starts an FCM stand-in with a fresh service account.
func NewFCM(tb testing.TB) *FCM {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	s := &FCM{Project: "natter-test", Email: "push@natter-test.iam.gserviceaccount.com", key: key, tokens: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("/", s.send)
	s.start(tb, mux, true)
	return s
}

// ServiceAccount is the service account key file of the stand-in.
func (s *FCM) ServiceAccount() []byte {
	der, _ := x509.MarshalPKCS8PrivateKey(s.key)
	b, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": s.Project, "client_email": s.Email,
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"token_uri":   s.URL() + "/token",
	})
	return b
}

// Config is the push.FCMConfig that sends to this stand-in.
func (s *FCM) Config() push.FCMConfig {
	return push.FCMConfig{ServiceAccount: s.ServiceAccount(), Endpoint: s.URL(), Client: s.Client()}
}

// Issued is how many access tokens the token endpoint issued.
func (s *FCM) Issued() int { return int(s.issued.Load()) }

// FCMToken returns a fresh registration token.
func FCMToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "fcm:" + hex.EncodeToString(b)
}

func (s *FCM) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		s.fail(w, http.StatusBadRequest, `{"error":"unsupported_grant_type"}`, "fcm token: grant_type "+r.PostForm.Get("grant_type"))
		return
	}
	var claims jwt.MapClaims
	_, err := jwt.ParseWithClaims(r.PostForm.Get("assertion"), &claims, func(*jwt.Token) (any, error) { return &s.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(s.URL()+"/token"), jwt.WithIssuer(s.Email), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil || claims["scope"] != "https://www.googleapis.com/auth/firebase.messaging" {
		s.fail(w, http.StatusBadRequest, `{"error":"invalid_grant"}`, "fcm token: assertion: "+errString(err))
		return
	}
	n := s.issued.Add(1)
	tok := "ya29.test-" + strconv.FormatInt(n, 10)
	s.mu.Lock()
	s.tokens[tok] = true
	s.mu.Unlock()
	exp := s.ExpiresIn
	if exp == 0 {
		exp = 3600
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "expires_in": exp, "token_type": "Bearer"})
}

func fcmError(status int, code, errorCode string) string {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"code": status, "status": code,
		"details": []map[string]string{{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": errorCode}}}})
	return string(b)
}

func (s *FCM) send(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/projects/"+s.Project+"/messages:send" {
		s.fail(w, http.StatusNotFound, fcmError(404, "NOT_FOUND", ""), "fcm: "+r.Method+" "+r.URL.Path)
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	known := s.tokens[tok]
	s.mu.Unlock()
	if !ok || !known {
		s.fail(w, http.StatusUnauthorized, fcmError(401, "UNAUTHENTICATED", ""), "fcm: bearer "+tok+" was not issued")
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 8192))
	var m struct {
		Message struct {
			Token   string            `json:"token"`
			Data    map[string]string `json:"data"`
			Android struct {
				CollapseKey string `json:"collapse_key"`
			} `json:"android"`
		} `json:"message"`
	}
	if json.Unmarshal(body, &m) != nil || m.Message.Token == "" || m.Message.Android.CollapseKey == "" || m.Message.Data["conv"] == "" {
		s.fail(w, http.StatusBadRequest, fcmError(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"), "fcm: message "+string(body))
		return
	}
	if s.answered(w, m.Message.Token) {
		return
	}
	s.record(Received{Device: m.Message.Token, Collapse: m.Message.Android.CollapseKey, Body: body})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"name":"projects/` + s.Project + `/messages/1"}`))
}

// Unregistered is FCM's answer for a token that is no longer valid.
var Unregistered = fcmError(404, "NOT_FOUND", "UNREGISTERED")
