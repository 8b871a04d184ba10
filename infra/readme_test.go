package infra_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// ownedElsewhere are files of infra/ another change maintains; README.md
// lists them, but they may be absent from a given tree.
var ownedElsewhere = map[string]bool{"nats/permissions.conf": true}

// TestReadme keeps infra/README.md's file table true: every file of infra/
// is listed, every listed file exists, and the Dockerfile builds the binary
// the manifests run.
func TestReadme(t *testing.T) {
	t.Parallel()
	readme := readFile(t, "README.md")
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(path, "_test.go") || filepath.Base(path) == "doc.go" || path == "README.md" {
			return nil
		}
		files = append(files, filepath.ToSlash(path))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !strings.Contains(readme, "`"+f+"`") {
			t.Errorf("README.md does not list %s", f)
		}
	}

	// The first column of the table under "## Files".
	section := readme[strings.Index(readme, "## Files"):]
	section = section[:strings.Index(section[1:], "\n## ")+1]
	pathRe := regexp.MustCompile("`([a-z0-9_./-]+/[a-zA-Z0-9_.-]+)`")
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 2 {
			continue
		}
		for _, m := range pathRe.FindAllStringSubmatch(cells[1], -1) {
			if _, err := os.Stat(m[1]); err != nil && !ownedElsewhere[m[1]] {
				t.Errorf("README.md lists %s: %v", m[1], err)
			}
		}
	}

	docker := readFile(t, filepath.Join("docker", "Dockerfile"))
	for _, want := range []string{"CGO_ENABLED=0", "go build", "./cmd/natter", "ENTRYPOINT", "USER 65532"} {
		if !strings.Contains(docker, want) {
			t.Errorf("docker/Dockerfile does not contain %q", want)
		}
	}
	for _, w := range workloads(t, loadManifests(t, k8sFiles(t)...)) {
		repo, _, _ := strings.Cut(w.c.Image, ":")
		if !strings.Contains(docker, "-t "+repo+":") {
			t.Errorf("docker/Dockerfile does not build %s, the image of %v", repo, w.obj)
		}
	}
}
