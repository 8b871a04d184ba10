package revoke

import "time"

// Entry is the value of one REVOKED key (JSON).
type Entry struct {
	// Before (Unix seconds), for user.* and dev.* keys: tokens whose iat is
	// before it (or that have no iat) are revoked.
	Before int64 `json:"before,omitempty"`
	// Until (Unix milliseconds) is when the entry lapses: the latest expiry
	// of the tokens it covers, or a ban's end. Zero means never (a ban
	// without expiry). The key's TTL ends then too; the View ignores a
	// lapsed entry even before its marker arrives.
	Until int64 `json:"until,omitempty"`
	// Reason of a ban (or a revocation), shown to the client.
	Reason string `json:"reason,omitempty"`
}

// lapsed reports whether e no longer applies at now.
func (e Entry) lapsed(now time.Time) bool {
	return e.Until != 0 && now.UnixMilli() >= e.Until
}
