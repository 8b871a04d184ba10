package edge

import (
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/convapi"
)

// serviceCodes returns every Code* constant of jetstream/convapi with its
// value, read from the package's source, so that a code added there is seen
// here without anyone listing it.
func serviceCodes(t *testing.T) map[string]string {
	t.Helper()
	const dir = "../jetstream/convapi"
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	codes := map[string]string{}
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if !strings.HasPrefix(n.Name, "Code") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok {
						t.Fatalf("convapi.%s is not a string literal", n.Name)
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					codes[n.Name] = v
				}
			}
		}
	}
	if len(codes) == 0 {
		t.Fatal("no Code* constants found in jetstream/convapi")
	}
	return codes
}

// TestConvCodesCoverContract fails when the conversations service has an
// error code the edge does not map, or maps one to a code the protocol does
// not document.
func TestConvCodesCoverContract(t *testing.T) {
	t.Parallel()
	documented := map[protocol.Code]bool{}
	for _, c := range []protocol.Code{protocol.CodeBadJSON, protocol.CodeBadFrame, protocol.CodeUnknownOp,
		protocol.CodeTooBig, protocol.CodeBadVersion, protocol.CodeUnauthorized, protocol.CodeNotMember,
		protocol.CodeNotFound, protocol.CodeForbidden, protocol.CodeRateLimited, protocol.CodeConflict,
		protocol.CodeUnavailable, protocol.CodeInternal} {
		documented[c] = true
	}
	codes := serviceCodes(t)
	for name, v := range codes {
		pc, ok := convCodes[v]
		if !ok {
			t.Errorf("convapi.%s (%q) has no protocol code in convCodes", name, v)
			continue
		}
		if !documented[pc] {
			t.Errorf("convapi.%s maps to %q, which is not a protocol code", name, pc)
		}
		code, msg, ok := convError(&convapi.Error{Code: v, Msg: "m"})
		if !ok || code != pc || msg != "m" {
			t.Errorf("convError(%q) = %q %q %v, want %q \"m\" true", v, code, msg, ok, pc)
		}
	}
	for v := range convCodes {
		found := false
		for _, cv := range codes {
			found = found || cv == v
		}
		if !found {
			t.Errorf("convCodes maps %q, which convapi does not define", v)
		}
	}
	if code, _, ok := convError(&convapi.Error{Code: "something_new", Msg: "x"}); ok || code != protocol.CodeInternal {
		t.Errorf("unknown service code: got %q %v, want internal false", code, ok)
	}
}

// TestProtocolLimitsFitService: every request the protocol's limits let
// through is within what the conversations service accepts, so a client
// that keeps to docs/protocol.md never meets a service limit it was not
// told about.
func TestProtocolLimitsFitService(t *testing.T) {
	t.Parallel()
	// A name of MaxName characters is up to 4 bytes per character.
	if protocol.MaxName*utf8.UTFMax > convapi.MaxNameLen {
		t.Errorf("protocol.MaxName %d characters can be %d bytes; the service takes %d", protocol.MaxName, protocol.MaxName*utf8.UTFMax, convapi.MaxNameLen)
	}
	if protocol.MaxHistoryLimit > convapi.MaxHistoryLimit {
		t.Errorf("protocol.MaxHistoryLimit %d > convapi.MaxHistoryLimit %d", protocol.MaxHistoryLimit, convapi.MaxHistoryLimit)
	}
}

// TestErrorCodeTemporarilyUnavailable: a JetStream 503 (no leader yet) is
// unavailable for the client, which retries, not internal.
func TestErrorCodeTemporarilyUnavailable(t *testing.T) {
	t.Parallel()
	e := &Edge{log: slog.New(slog.DiscardHandler)}
	err := fmt.Errorf("msglog: append: %w", &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"})
	if code, _ := e.errorCode(err); code != protocol.CodeUnavailable {
		t.Fatalf("code %q, want unavailable", code)
	}
}
