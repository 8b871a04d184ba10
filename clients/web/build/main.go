// Command build bundles the chat web app (clients/web/src, with the
// TypeScript SDK of clients/js it imports) into clients/web/dist, the files
// the natter binary embeds, with esbuild's Go API: nothing but Go is needed.
//
//	go run ./clients/web/build            # from the repository's root
//	go run ./clients/web/build -check     # exit 1 if dist/ is out of date
//
// TestDistMatchesSources fails when the committed dist/ differs from what
// the sources build to.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

func main() {
	dir := flag.String("dir", "clients/web", "the web app's folder (holding src/ and dist/)")
	check := flag.Bool("check", false, "only compare dist/ with a fresh build; exit 1 if they differ")
	flag.Parse()
	files, err := build(*dir)
	if err == nil {
		if *check {
			err = compare(*dir, files)
		} else {
			err = write(*dir, files)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
}

// staticFiles are copied from src/ to dist/ as they are.
var staticFiles = []string{"index.html", "favicon.svg"}

// build returns every file of dist/ by its name, built from dir/src.
func build(dir string) (map[string][]byte, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	res := api.Build(api.BuildOptions{
		AbsWorkingDir:     abs,
		EntryPoints:       []string{"src/app.ts", "src/app.css"},
		Outdir:            "dist",
		Bundle:            true,
		Write:             false,
		Format:            api.FormatESModule,
		Platform:          api.PlatformBrowser,
		Target:            api.ES2020,
		MinifyWhitespace:  true,
		MinifySyntax:      true,
		MinifyIdentifiers: true,
		LegalComments:     api.LegalCommentsNone,
		Charset:           api.CharsetUTF8,
		LogLevel:          api.LogLevelSilent,
	})
	if len(res.Errors) > 0 {
		msgs := api.FormatMessages(res.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
		return nil, errors.New(strings.Join(msgs, ""))
	}
	out := map[string][]byte{}
	for _, f := range res.OutputFiles {
		rel, err := filepath.Rel(filepath.Join(abs, "dist"), f.Path)
		if err != nil {
			return nil, err
		}
		out[filepath.ToSlash(rel)] = f.Contents
	}
	for _, name := range staticFiles {
		b, err := os.ReadFile(filepath.Join(abs, "src", name))
		if err != nil {
			return nil, err
		}
		out[name] = b
	}
	return out, nil
}

// distFiles reads dir/dist.
func distFiles(dir string) (map[string][]byte, error) {
	got := map[string][]byte{}
	root := filepath.Join(dir, "dist")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		got[filepath.ToSlash(rel)] = b
		return err
	})
	return got, err
}

// compare reports every file of dist/ that differs from files.
func compare(dir string, files map[string][]byte) error {
	got, err := distFiles(dir)
	if err != nil {
		return err
	}
	var diffs []string
	for _, name := range slices.Sorted(maps.Keys(files)) {
		switch b, ok := got[name]; {
		case !ok:
			diffs = append(diffs, "dist/"+name+" is missing")
		case !bytes.Equal(b, files[name]):
			diffs = append(diffs, "dist/"+name+" differs from what src/ builds to")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(got)) {
		if _, ok := files[name]; !ok {
			diffs = append(diffs, "dist/"+name+" is not built from src/")
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%s (run: go run ./clients/web/build)", strings.Join(diffs, "; "))
	}
	return nil
}

// write replaces dir/dist with files.
func write(dir string, files map[string][]byte) error {
	root := filepath.Join(dir, "dist")
	if err := os.RemoveAll(root); err != nil {
		return err
	}
	for name, b := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
