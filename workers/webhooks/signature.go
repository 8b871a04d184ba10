package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Request headers of a delivery.
const (
	// HeaderEventID is the event id: the same on every attempt, so
	// receivers deduplicate on it.
	HeaderEventID = "Natter-Event-Id"
	// HeaderEventKind is the event kind ("message_created").
	HeaderEventKind = "Natter-Event-Kind"
	// HeaderTimestamp is when this attempt was signed, in unix seconds.
	HeaderTimestamp = "Natter-Timestamp"
	// HeaderSignature is "v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>".
	HeaderSignature = "Natter-Signature"
	// HeaderAttempt is the attempt number of this delivery, from 1.
	HeaderAttempt = "Natter-Attempt"
)

// DefaultTolerance is how far a timestamp may be from the receiver's clock
// when [Verify] is given a zero tolerance.
const DefaultTolerance = 5 * time.Minute

// signatureScheme prefixes each signature in HeaderSignature.
const signatureScheme = "v1="

// Sign returns the HeaderSignature value of body signed at timestamp (the
// exact HeaderTimestamp value, unix seconds in decimal):
//
//	v1=hex(HMAC-SHA256(secret, timestamp + "." + body))
func Sign(secret, timestamp string, body []byte) string {
	return signatureScheme + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a delivery on the receiving side. timestamp and sigHeader
// are the HeaderTimestamp and HeaderSignature values, body the raw request
// body (before any JSON decoding). sigHeader may hold several signatures
// separated by commas ("v1=ab..,v1=cd.."); one match is enough, so a sender
// can sign with an old and a new secret while the secret rotates. Entries of
// other schemes are ignored.
//
// tolerance bounds |now - timestamp|, which stops a captured request from
// being replayed later; zero means DefaultTolerance, a negative tolerance
// skips the check. Verify returns nil, or an error wrapping
// [ErrMalformedSignature], [ErrTimestampTolerance] or [ErrSignature].
func Verify(secret, timestamp string, body []byte, sigHeader string, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || ts <= 0 {
		return fmt.Errorf("%w: timestamp %q is not unix seconds", ErrMalformedSignature, timestamp)
	}
	if tolerance == 0 {
		tolerance = DefaultTolerance
	}
	if tolerance > 0 {
		if d := time.Since(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
			return fmt.Errorf("%w: timestamp %d is %s away (tolerance %s)", ErrTimestampTolerance, ts, d.Round(time.Second).Abs(), tolerance)
		}
	}
	want := mac(secret, timestamp, body)
	found := false
	for part := range strings.SplitSeq(sigHeader, ",") {
		part = strings.TrimSpace(part)
		hexSig, ok := strings.CutPrefix(part, signatureScheme)
		if !ok {
			continue
		}
		got, err := hex.DecodeString(hexSig)
		if err != nil || len(got) != sha256.Size {
			continue
		}
		found = true
		if hmac.Equal(got, want) {
			return nil
		}
	}
	if !found {
		return fmt.Errorf("%w: no %s signature in %q", ErrMalformedSignature, strings.TrimSuffix(signatureScheme, "="), sigHeader)
	}
	return ErrSignature
}
