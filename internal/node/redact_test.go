package node

import (
	"strings"
	"testing"
)

// TestRedact: no password or NATS token of a URL reaches a log line, in
// lists of NATS URLs (every URL of the list), in multi-host MongoDB URIs,
// and in URLs that do not parse.
func TestRedact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"nats://edge:s3cret@n1:4222,nats://edge:s3cret@n2:4222", "nats://edge:xxxxx@n1:4222,nats://edge:xxxxx@n2:4222"},
		{"nats://edge:s3cret@n1:4222, nats://edge:s3cret@n2:4222", "nats://edge:xxxxx@n1:4222,nats://edge:xxxxx@n2:4222"},
		{"nats://s3cret@n1:4222", "nats://xxxxx@n1:4222"},
		{"tls://n1:4222,tls://n2:4222", "tls://n1:4222,tls://n2:4222"},
		{"nats://edge:p%zzs3cret@n1:4222", "nats://xxxxx@n1:4222"},
		{"", ""},
	} {
		if got := RedactNATSURL(tc.in); got != tc.want {
			t.Errorf("RedactNATSURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"mongodb://natter:s3cret@m1:27017,m2:27017,m3:27017/?replicaSet=rs0&tls=true&authSource=admin", "mongodb://natter:xxxxx@m1:27017,m2:27017,m3:27017/?replicaSet=rs0&tls=true&authSource=admin"},
		{"mongodb+srv://natter:s3cret@cluster0.example.net/natter?authMechanism=SCRAM-SHA-256", "mongodb+srv://natter:xxxxx@cluster0.example.net/natter?authMechanism=SCRAM-SHA-256"},
		{"mongodb://CN%3Dnatter@m1/?authMechanism=MONGODB-X509&tls=true", "mongodb://CN%3Dnatter@m1/?authMechanism=MONGODB-X509&tls=true"},
		{"mongodb://natter:s3%zzcret@m1/", "mongodb://xxxxx@m1/"},
		{"mongodb://127.0.0.1:27017/", "mongodb://127.0.0.1:27017/"},
	} {
		got := RedactMongoURI(tc.in)
		if got != tc.want {
			t.Errorf("RedactMongoURI(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(got, "s3") {
			t.Errorf("RedactMongoURI(%q) shows the password: %q", tc.in, got)
		}
	}
}
