package node

import (
	"net/url"
	"strings"
)

// redacted replaces a secret in a URL shown in logs and errors.
const redacted = "xxxxx"

// RedactNATSURL is a NATS URL list (comma-separated) fit for a log: in each
// URL a password is replaced, and so is a user without a password (NATS
// reads it as a token).
func RedactNATSURL(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		parts[i] = redactURL(p, true)
	}
	return strings.Join(parts, ",")
}

// RedactMongoURI is a MongoDB URI fit for a log: its password replaced.
// The user name stays (it is not a secret in MongoDB and tells which
// user connects).
func RedactMongoURI(uri string) string { return redactURL(uri, false) }

// redactURL replaces the password of u (and with userIsSecret, a user
// without a password). A URL that does not parse loses its whole user
// information, found by hand: what lies between "://" and the last "@"
// before the path.
func redactURL(u string, userIsSecret bool) string {
	pu, err := url.Parse(strings.TrimSpace(u))
	if err != nil {
		return redactByHand(u)
	}
	if pu.User == nil {
		return u
	}
	if _, ok := pu.User.Password(); ok {
		pu.User = url.UserPassword(pu.User.Username(), redacted)
	} else if userIsSecret {
		pu.User = url.User(redacted)
	} else {
		return u
	}
	return strings.Replace(pu.String(), url.QueryEscape(redacted), redacted, 1)
}

func redactByHand(u string) string {
	start := strings.Index(u, "://")
	if start < 0 {
		start = 0
	} else {
		start += 3
	}
	end := len(u)
	if i := strings.IndexAny(u[start:], "/?#"); i >= 0 {
		end = start + i
	}
	at := strings.LastIndexByte(u[start:end], '@')
	if at < 0 {
		return u
	}
	return u[:start] + redacted + u[start+at:]
}
