package jsonstr_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/natter-im/natter/internal/jsonstr"
)

// FuzzAppend: Append writes what encoding/json writes, with and without
// HTML escaping.
func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "\b\f\n\r\t\x00\x1f", "<a href='x'>&amp;</a>",
		"\u2028\u2029", "\xff\xfe invalid", "héllo wörld 日本語 🎉"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, html := range []bool{true, false} {
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetEscapeHTML(html)
			if err := enc.Encode(s); err != nil {
				t.Fatal(err)
			}
			w := bytes.TrimSuffix(want.Bytes(), []byte("\n"))
			if got := jsonstr.Append(nil, s, html); !bytes.Equal(got, w) {
				t.Fatalf("html %v: Append(%q) = %s, encoding/json %s", html, s, got, w)
			}
		}
	})
}
