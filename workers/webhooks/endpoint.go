package webhooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/natter-im/natter/jetstream/subjects"
)

// Defaults and limits of an [Endpoint].
const (
	DefaultMaxAttempts = 8
	DefaultBackoff     = time.Second
	DefaultTimeout     = 10 * time.Second
	// MaxBackoff caps the delay between two attempts.
	MaxBackoff = 5 * time.Minute
	// MinSecretLen is the shortest signing secret accepted, in bytes.
	MinSecretLen = 16
)

// Endpoint is one configured webhook receiver. Each endpoint has its own
// durable consumer (see [ConsumerName]), so a slow or failing endpoint never
// delays another.
type Endpoint struct {
	// Name identifies the endpoint: 1..MaxNameLen characters of
	// [A-Za-z0-9_-], unique among endpoints regardless of case. It names the
	// durable consumer, the metrics label and the dead-letter subject.
	// Renaming an endpoint starts a new consumer. Required.
	Name string `json:"name"`
	// URL receives the POSTs: http or https. Redirects are not followed.
	// Required.
	URL string `json:"url"`
	// Secret signs every request (see [Sign]); at least MinSecretLen bytes.
	// Required.
	Secret string `json:"secret"`
	// Kinds selects the event kinds delivered (values of [KnownKinds]).
	// Empty means every kind.
	Kinds []string `json:"kinds,omitempty"`
	// MaxAttempts is how often one event is tried before it is
	// dead-lettered. Zero means DefaultMaxAttempts (8).
	MaxAttempts int `json:"max_attempts,omitempty"`
	// Backoff is the delay after the first failed attempt; it doubles after
	// each further failure, capped at MaxBackoff. A Retry-After header on a
	// 429 or 503 answer lengthens it. Zero means DefaultBackoff (1s).
	Backoff time.Duration `json:"-"`
	// Timeout bounds one attempt (connect, send, response headers and
	// body). Zero means DefaultTimeout (10s).
	Timeout time.Duration `json:"-"`
	// MaxInFlight is how many events of this endpoint are being delivered at
	// once, by all worker replicas together (the consumer's MaxAckPending).
	// Zero means 1, which keeps order: the endpoint gets events in stream
	// order, and a failing event holds back those after it until it
	// succeeds or is dead-lettered. Above 1, events may arrive out of order.
	MaxInFlight int `json:"max_in_flight,omitempty"`
}

// withDefaults fills in zero fields.
func (e Endpoint) withDefaults() Endpoint {
	if e.MaxAttempts == 0 {
		e.MaxAttempts = DefaultMaxAttempts
	}
	if e.Backoff == 0 {
		e.Backoff = DefaultBackoff
	}
	if e.Timeout == 0 {
		e.Timeout = DefaultTimeout
	}
	if e.MaxInFlight == 0 {
		e.MaxInFlight = 1
	}
	return e
}

// LogValue logs the endpoint without its secret.
func (e Endpoint) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", e.Name), slog.String("url", redactURL(e.URL)), slog.Any("kinds", e.Kinds))
}

// String describes the endpoint without its secret.
func (e Endpoint) String() string { return e.Name + " " + redactURL(e.URL) }

// redactURL hides the password and the query (which may carry a token).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<invalid url>"
	}
	if u.RawQuery != "" {
		u.RawQuery = "redacted"
	}
	return u.Redacted()
}

// validate checks one endpoint; every problem is one error wrapping
// ErrInvalidEndpoint.
func (e Endpoint) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w %q: %s", ErrInvalidEndpoint, e.Name, fmt.Sprintf(format, args...)))
	}
	if err := subjects.ValidID(e.Name); err != nil {
		bad("name: must be 1..%d characters of A-Z a-z 0-9 _ -", MaxNameLen)
	} else if len(e.Name) > MaxNameLen {
		bad("name: longer than %d characters", MaxNameLen)
	}
	if u, err := url.Parse(e.URL); err != nil {
		bad("url: %v", err)
	} else if u.Scheme != "http" && u.Scheme != "https" {
		bad("url: scheme must be http or https, not %q", u.Scheme)
	} else if u.Host == "" {
		bad("url: no host in %q", u.Redacted())
	}
	if len(e.Secret) < MinSecretLen {
		bad("secret: must be at least %d bytes, is %d", MinSecretLen, len(e.Secret))
	}
	seen := make(map[string]bool, len(e.Kinds))
	for _, k := range e.Kinds {
		switch {
		case !slices.Contains(KnownKinds, k):
			bad("kinds: unknown kind %q (known: %s)", k, strings.Join(KnownKinds, ", "))
		case seen[k]:
			bad("kinds: %q listed twice", k)
		}
		seen[k] = true
	}
	if e.MaxAttempts < 0 {
		bad("max_attempts: %d is negative", e.MaxAttempts)
	}
	if e.Backoff < 0 {
		bad("backoff: %s is negative", e.Backoff)
	}
	if e.Timeout < 0 {
		bad("timeout: %s is negative", e.Timeout)
	}
	if e.MaxInFlight < 0 {
		bad("max_in_flight: %d is negative", e.MaxInFlight)
	}
	return errors.Join(errs...)
}

// ValidateEndpoints checks every endpoint and that names are unique
// regardless of case (they name consumers upper-cased). The error lists
// every problem; each wraps [ErrInvalidEndpoint].
func ValidateEndpoints(eps []Endpoint) error {
	var errs []error
	names := make(map[string]bool, len(eps))
	for i, e := range eps {
		if err := e.validate(); err != nil {
			errs = append(errs, fmt.Errorf("endpoint %d: %w", i, err))
		}
		key := strings.ToUpper(e.Name)
		if e.Name != "" && names[key] {
			errs = append(errs, fmt.Errorf("endpoint %d: %w %q: name used twice (names are compared regardless of case)", i, ErrInvalidEndpoint, e.Name))
		}
		names[key] = true
	}
	return errors.Join(errs...)
}

// endpointFile is the JSON form read by [LoadEndpoints]: durations are
// strings ("1s", "250ms").
type endpointFile struct {
	Endpoints []endpointJSON `json:"endpoints"`
}

type endpointJSON struct {
	Endpoint
	Backoff string `json:"backoff,omitempty"`
	Timeout string `json:"timeout,omitempty"`
}

// ParseEndpoints decodes and validates endpoints from JSON of the form
//
//	{"endpoints": [{"name": "billing", "url": "https://billing.example/hooks",
//	  "secret": "...", "kinds": ["message_created"], "max_attempts": 8,
//	  "backoff": "1s", "timeout": "10s", "max_in_flight": 1}]}
//
// Unknown fields are errors (a misspelt "kind" would otherwise select every
// kind). Only name, url and secret are required.
func ParseEndpoints(data []byte) ([]Endpoint, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f endpointFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: decode: %w", ErrInvalidEndpoint, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: decode: data after the JSON object", ErrInvalidEndpoint)
	}
	eps := make([]Endpoint, len(f.Endpoints))
	var errs []error
	for i, ej := range f.Endpoints {
		e := ej.Endpoint
		for _, d := range []struct {
			field string
			s     string
			to    *time.Duration
		}{{"backoff", ej.Backoff, &e.Backoff}, {"timeout", ej.Timeout, &e.Timeout}} {
			if d.s == "" {
				continue
			}
			v, err := time.ParseDuration(d.s)
			if err != nil {
				errs = append(errs, fmt.Errorf("endpoint %d: %w %q: %s: %w", i, ErrInvalidEndpoint, e.Name, d.field, err))
			}
			*d.to = v
		}
		eps[i] = e
	}
	if err := errors.Join(append(errs, ValidateEndpoints(eps))...); err != nil {
		return nil, err
	}
	return eps, nil
}

// LoadEndpoints reads endpoints from the JSON file at path; see
// [ParseEndpoints] for the format. The file holds secrets: mount it as one.
func LoadEndpoints(path string) ([]Endpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("webhooks: load endpoints: %w", err)
	}
	eps, err := ParseEndpoints(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return eps, nil
}
