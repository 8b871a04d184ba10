package client_test

import (
	"go/build"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestRawSyscallsOnlyWhereTheyBuild: the SDK is a library for apps on any
// OS; its raw socket path (reader.go) calls read(2)/write(2) through
// rawsys.go, built for Linux and macOS only, and other platforms build
// with rawsys_other.go (the raw path off). A file built on Windows, FreeBSD
// or js/wasm that names a raw system call breaks the SDK's build there.
// (Checked by the build constraints of the files, not a cross-build,
// which takes minutes on a fresh machine; `GOOS=windows go vet ./client`
// does the full check.)
func TestRawSyscallsOnlyWhereTheyBuild(t *testing.T) {
	raw := regexp.MustCompile(`syscall\.(RawSyscall|Syscall|SYS_)`)
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]string{{"windows", "amd64"}, {"freebsd", "amd64"}, {"openbsd", "amd64"}, {"js", "wasm"}} {
		ctx := build.Default
		ctx.GOOS, ctx.GOARCH, ctx.CgoEnabled = p[0], p[1], false
		built := 0
		for _, f := range files {
			ok, err := ctx.MatchFile(".", f)
			if err != nil {
				t.Fatal(err)
			}
			if !ok || filepath.Ext(f) != ".go" || len(f) > 8 && f[len(f)-8:] == "_test.go" {
				continue
			}
			built++
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if loc := raw.FindIndex(src); loc != nil {
				t.Errorf("%s is built for GOOS=%s but calls %s: move it behind rawsys.go's build constraint", f, p[0], src[loc[0]:loc[1]])
			}
		}
		if built == 0 {
			t.Fatalf("no file of the package is built for GOOS=%s", p[0])
		}
	}
	if ctx := build.Default; true {
		ctx.GOOS = "windows"
		if ok, _ := ctx.MatchFile(".", "rawsys_other.go"); !ok {
			t.Error("rawsys_other.go is not built on windows: the raw path's stand-ins are missing there")
		}
	}
}
