package protocol

import (
	"crypto/ecdh"
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
)

// Limits of a push registration.
const (
	// MaxPushToken is the longest apns or fcm token.
	MaxPushToken = 4096
	// MaxPushEndpoint is the longest Web Push endpoint URL.
	MaxPushEndpoint = 2048
)

// validatePush checks a push.register: the provider, and the token (apns:
// 64..200 hex digits; fcm: 32..4096 characters of [A-Za-z0-9_:.-]) or the
// subscription (webpush: an https endpoint, a P-256 public key and a
// 16-byte auth secret, base64url), never both.
func (r *Request) validatePush() *Error {
	switch r.Provider {
	case PushAPNs, PushFCM:
		if r.Subscription != nil {
			return badFrame("", "subscription: only for provider webpush (apns and fcm take a token)")
		}
		if r.Token == "" {
			return badFrame("", "token: required for provider "+r.Provider)
		}
		if r.Provider == PushAPNs {
			return checkAPNsToken(r.Token)
		}
		return checkFCMToken(r.Token)
	case PushWebPush:
		if r.Token != "" {
			return badFrame("", "token: not for provider webpush (it takes a subscription)")
		}
		if r.Subscription == nil {
			return badFrame("", "subscription: required for provider webpush ({endpoint, keys: {p256dh, auth}})")
		}
		return r.Subscription.check()
	case "":
		return badFrame("", "provider: required (apns, fcm or webpush)")
	}
	return badFrame("", "provider: unknown provider "+strconv.Quote(truncate(r.Provider, 32))+" (apns, fcm or webpush)")
}

func checkAPNsToken(tok string) *Error {
	if len(tok) < 64 || len(tok) > 200 || len(tok)%2 != 0 {
		return badFrame("", "token: an apns device token is 64..200 hex digits (an even number)")
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return badFrame("", "token: an apns device token is hex digits only")
		}
	}
	return nil
}

func checkFCMToken(tok string) *Error {
	if len(tok) < 32 || len(tok) > MaxPushToken {
		return badFrame("", "token: an fcm registration token is 32.."+strconv.Itoa(MaxPushToken)+" characters")
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == ':' || c == '-' || c == '.') {
			return badFrame("", "token: an fcm registration token is characters of [A-Za-z0-9_:.-]")
		}
	}
	return nil
}

func (s *PushSubscription) check() *Error {
	if s.Endpoint == "" {
		return badFrame("", "subscription.endpoint: required")
	}
	if len(s.Endpoint) > MaxPushEndpoint {
		return badFrame("", "subscription.endpoint: longer than "+strconv.Itoa(MaxPushEndpoint)+" bytes")
	}
	u, err := url.Parse(s.Endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return badFrame("", "subscription.endpoint: must be an https URL")
	}
	if s.Keys.P256dh == "" {
		return badFrame("", "subscription.keys.p256dh: required")
	}
	pub, err := DecodePushKey(s.Keys.P256dh)
	if err != nil || len(pub) != 65 {
		return badFrame("", "subscription.keys.p256dh: must be a P-256 public key, 65 bytes uncompressed, base64url")
	}
	if _, err := ecdh.P256().NewPublicKey(pub); err != nil {
		return badFrame("", "subscription.keys.p256dh: not a point of P-256")
	}
	if s.Keys.Auth == "" {
		return badFrame("", "subscription.keys.auth: required")
	}
	if a, err := DecodePushKey(s.Keys.Auth); err != nil || len(a) != 16 {
		return badFrame("", "subscription.keys.auth: must be 16 bytes, base64url")
	}
	return nil
}

// DecodePushKey decodes a Web Push key: base64url with or without padding
// (browsers leave it off; some libraries add it).
func DecodePushKey(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
