package pushtest

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Received is one notification a stand-in accepted.
type Received struct {
	// Device is the APNs token, the FCM token or the Web Push
	// subscription's name.
	Device string
	// Collapse is the collapse id (apns-collapse-id, FCM collapse_key,
	// Web Push Topic).
	Collapse string
	// Body is the JSON payload: the APNs body, the FCM message, the
	// decrypted Web Push payload.
	Body []byte
	At   time.Time
}

// Answer is a configured answer to a device's next requests.
type Answer struct {
	Status int
	Body   string
	// RetryAfter, if set, is sent as Retry-After.
	RetryAfter string
	// Times is how many requests get it; 0 means all.
	Times int
}

// recorder is the part every stand-in shares.
type recorder struct {
	mu      sync.Mutex
	got     []Received
	errs    []string
	answers map[string]*Answer
	srv     *httptest.Server
}

func (r *recorder) start(tb testing.TB, h http.Handler, http2 bool) {
	r.answers = map[string]*Answer{}
	r.srv = httptest.NewUnstartedServer(h)
	r.srv.EnableHTTP2 = http2
	r.srv.StartTLS()
	tb.Cleanup(r.srv.Close)
}

// URL is the stand-in's base URL.
func (r *recorder) URL() string { return r.srv.URL }

// Client is an HTTP client that trusts the stand-in.
func (r *recorder) Client() *http.Client { return r.srv.Client() }

// Answer makes the stand-in answer device's requests with a.
func (r *recorder) Answer(device string, a Answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers[device] = &a
}

// Received returns the notifications accepted so far.
func (r *recorder) Received() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received(nil), r.got...)
}

// Count is the number of notifications accepted so far.
func (r *recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// Errors returns the failed checks so far.
func (r *recorder) Errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

func (r *recorder) fail(w http.ResponseWriter, status int, body, msg string) {
	r.mu.Lock()
	r.errs = append(r.errs, msg)
	r.mu.Unlock()
	http.Error(w, body, status)
}

// answered writes a configured answer for device, if any.
func (r *recorder) answered(w http.ResponseWriter, device string) bool {
	r.mu.Lock()
	a := r.answers[device]
	if a != nil && a.Times > 0 {
		if a.Times--; a.Times == 0 {
			delete(r.answers, device)
		}
	}
	r.mu.Unlock()
	if a == nil {
		return false
	}
	if a.RetryAfter != "" {
		w.Header().Set("Retry-After", a.RetryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.Status)
	_, _ = w.Write([]byte(a.Body))
	return true
}

func (r *recorder) record(rc Received) {
	rc.At = time.Now()
	r.mu.Lock()
	r.got = append(r.got, rc)
	r.mu.Unlock()
}
