package infra_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const nginxConf = "nginx/natter.conf"

// directive is one nginx directive with its block, if any.
type directive struct {
	name  string
	args  []string
	block []*directive // nil for a simple directive
	line  int
}

// parseNginx parses nginx configuration syntax: directives end in ";" or
// open a "{ ... }" block; "#" starts a comment; arguments may be quoted.
func parseNginx(src string) ([]*directive, error) {
	toks, err := tokenize(src)
	if err != nil {
		return nil, err
	}
	pos := 0
	var parse func(depth int) ([]*directive, error)
	parse = func(depth int) ([]*directive, error) {
		var out []*directive
		for pos < len(toks) {
			t := toks[pos]
			switch t.text {
			case "}":
				if depth == 0 {
					return nil, fmt.Errorf("line %d: unexpected }", t.line)
				}
				pos++
				return out, nil
			case "{", ";":
				return nil, fmt.Errorf("line %d: unexpected %s", t.line, t.text)
			}
			d := &directive{name: t.text, line: t.line}
			pos++
			for pos < len(toks) && !toks[pos].special() {
				d.args = append(d.args, toks[pos].text)
				pos++
			}
			if pos == len(toks) {
				return nil, fmt.Errorf("line %d: %s: missing ; or {", d.line, d.name)
			}
			switch toks[pos].text {
			case ";":
				pos++
			case "{":
				pos++
				block, err := parse(depth + 1)
				if err != nil {
					return nil, err
				}
				if block == nil {
					block = []*directive{}
				}
				d.block = block
			default:
				return nil, fmt.Errorf("line %d: %s: unexpected }", d.line, d.name)
			}
			out = append(out, d)
		}
		if depth > 0 {
			return nil, fmt.Errorf("unclosed block at end of file")
		}
		return out, nil
	}
	return parse(0)
}

type ntoken struct {
	text   string
	quoted bool
	line   int
}

func (t ntoken) special() bool { return !t.quoted && (t.text == "{" || t.text == "}" || t.text == ";") }

func tokenize(src string) ([]ntoken, error) {
	var toks []ntoken
	line := 1
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '{' || c == '}' || c == ';':
			toks = append(toks, ntoken{text: string(c), line: line})
			i++
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(src) {
				return nil, fmt.Errorf("line %d: unterminated quote", line)
			}
			toks = append(toks, ntoken{text: src[i+1 : j], quoted: true, line: line})
			i = j + 1
		default:
			j := i
			for j < len(src) && !strings.ContainsRune(" \t\r\n{};", rune(src[j])) {
				j++
			}
			toks = append(toks, ntoken{text: src[i:j], line: line})
			i = j
		}
	}
	return toks, nil
}

// all returns the directives named name in ds (not nested).
func all(ds []*directive, name string) []*directive {
	var out []*directive
	for _, d := range ds {
		if d.name == name {
			out = append(out, d)
		}
	}
	return out
}

// one returns the single directive name in ds, or nil.
func one(ds []*directive, name string) *directive {
	if m := all(ds, name); len(m) == 1 {
		return m[0]
	}
	return nil
}

// location returns the location block of server with exactly these args.
func location(server *directive, args ...string) *directive {
	for _, l := range all(server.block, "location") {
		if slices.Equal(l.args, args) {
			return l
		}
	}
	return nil
}

// effective returns the arguments of name in loc, else inherited from http.
func effective(http, loc *directive, name string) []string {
	if d := one(loc.block, name); d != nil {
		return d.args
	}
	if d := one(http.block, name); d != nil {
		return d.args
	}
	return nil
}

// TestNginxConfig parses infra/nginx/natter.conf structurally (always) and
// checks what the edges need: least_conn over several edges, HTTP/1.1 with
// the Upgrade and Connection headers on the WebSocket path, idle timeouts
// above twice the 25 s ping interval, /healthz and /readyz passed through,
// a TLS server. If nginx is installed, "nginx -t" checks the same file
// (paths moved to a temp dir, a throwaway certificate generated).
func TestNginxConfig(t *testing.T) {
	t.Parallel()
	src := readFile(t, nginxConf)
	top, err := parseNginx(src)
	if err != nil {
		t.Fatalf("%s: %v", nginxConf, err)
	}
	if one(top, "events") == nil || one(top, "http") == nil {
		t.Fatalf("%s: want events and http blocks (a complete nginx.conf)", nginxConf)
	}
	http := one(top, "http")

	var up *directive
	for _, u := range all(http.block, "upstream") {
		if slices.Equal(u.args, []string{"natter_edges"}) {
			up = u
		}
	}
	if up == nil {
		t.Fatalf("no upstream natter_edges")
	}
	if one(up.block, "least_conn") == nil {
		t.Error("upstream natter_edges: no least_conn")
	}
	if n := len(all(up.block, "server")); n < 2 {
		t.Errorf("upstream natter_edges: %d servers, want several edges", n)
	}

	var mapped bool
	for _, m := range all(http.block, "map") {
		if slices.Equal(m.args, []string{"$http_upgrade", "$connection_upgrade"}) {
			d := one(m.block, "default")
			mapped = d != nil && slices.Equal(d.args, []string{"upgrade"})
		}
	}
	if !mapped {
		t.Error("no map $http_upgrade -> $connection_upgrade with default upgrade")
	}

	var tls *directive
	for _, s := range all(http.block, "server") {
		for _, l := range all(s.block, "listen") {
			if slices.Contains(l.args, "ssl") {
				tls = s
			}
		}
	}
	if tls == nil || one(tls.block, "ssl_certificate") == nil || one(tls.block, "ssl_certificate_key") == nil {
		t.Fatal("no TLS server (listen ... ssl with ssl_certificate and ssl_certificate_key)")
	}

	ws := location(tls, "=", "/v1/ws")
	if ws == nil {
		t.Fatal("TLS server: no location = /v1/ws (edge/protocol.Path)")
	}
	if p := effective(http, ws, "proxy_pass"); len(p) != 1 || p[0] != "http://natter_edges" {
		t.Errorf("/v1/ws: proxy_pass %v", p)
	}
	if v := effective(http, ws, "proxy_http_version"); !slices.Equal(v, []string{"1.1"}) {
		t.Errorf("/v1/ws: proxy_http_version %v, want 1.1 (WebSocket upgrade)", v)
	}
	headers := make(map[string]string)
	sets := all(ws.block, "proxy_set_header")
	if len(sets) == 0 { // inherited only when the location sets none
		sets = all(http.block, "proxy_set_header")
	}
	for _, h := range sets {
		if len(h.args) == 2 {
			headers[h.args[0]] = h.args[1]
		}
	}
	if headers["Upgrade"] != "$http_upgrade" || headers["Connection"] != "$connection_upgrade" {
		t.Errorf("/v1/ws: headers %v; want Upgrade $http_upgrade and Connection $connection_upgrade", headers)
	}
	for _, name := range []string{"proxy_read_timeout", "proxy_send_timeout"} {
		v := effective(http, ws, name)
		d, err := time.ParseDuration(strings.Join(v, ""))
		if err != nil || d <= 2*25*time.Second {
			t.Errorf("/v1/ws: %s %v; want above 2x the 25s ping interval", name, v)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		l := location(tls, "=", path)
		if l == nil || len(effective(http, l, "proxy_pass")) != 1 || effective(http, l, "proxy_pass")[0] != "http://natter_edges" {
			t.Errorf("TLS server: %s is not passed to the edges", path)
		}
	}

	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Logf("nginx not installed: checked %s with the structural parser only", nginxConf)
		return
	}
	dir := t.TempDir()
	writeCert(t, filepath.Join(dir, "natter.crt"), filepath.Join(dir, "natter.key"))
	r := strings.NewReplacer("/etc/nginx/tls/", dir+"/", "/var/log/nginx/", dir+"/", "/run/", dir+"/")
	conf := filepath.Join(dir, "natter.conf")
	if err := os.WriteFile(conf, []byte(r.Replace(src)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nginx, "-t", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf).CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t -c %s: %v\n%s", nginxConf, err, out)
	}
	if !strings.Contains(string(out), "test is successful") {
		t.Fatalf("nginx -t: %s", out)
	}
}

// writeCert writes a throwaway self-signed certificate and key.
func writeCert(tb testing.TB, certPath, keyPath string) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "chat.example.com"},
		DNSNames:     []string{"chat.example.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// TestParseNginxRejects keeps the structural parser honest: it must refuse
// what nginx refuses in structure.
func TestParseNginxRejects(t *testing.T) {
	t.Parallel()
	for _, src := range []string{
		"http { server { listen 80; }",
		"http { listen 80; } }",
		"events { worker_connections 1 }",
		"http { return 200 \"x; }",
	} {
		if _, err := parseNginx(src); err == nil {
			t.Errorf("parseNginx(%q) accepted", src)
		}
	}
}
