package infra_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a stand-in for the mongosh globals the scripts use (db, rs,
// sh, print, sleep, MinKey, process.env). It records every call with its
// arguments and prints them as JSON, so the test checks what the scripts ask
// MongoDB to do. It checks the scripts' logic, not MongoDB's answers: no
// mongod runs here (the real index creation is tested by workers/store).
const recorder = `
const vm = require("vm");
const fs = require("fs");
const calls = [];
const returns = {
  "rs.status": () => { const e = new Error("no config"); e.codeName = "NotYetInitialized"; throw e; },
  "db.hello": () => ({ isWritablePrimary: true }),
  "admin.getUser": () => null,
  "config.collections.countDocuments": () => 0,
  "config.shards.find": () => ({ toArray: () => [{ _id: "shardA" }, { _id: "shardB" }, { _id: "shardC" }] }),
};
function proxy(path) {
  return new Proxy(function () {}, {
    get(_, prop) {
      if (prop === "then" || typeof prop === "symbol") return undefined;
      return proxy(path + "." + prop);
    },
    apply(_, __, args) {
      const name = path.replace(/^db\.getSiblingDB$/, "getSiblingDB");
      if (name === "getSiblingDB") return proxy(args[0]);
      calls.push({ fn: path, args });
      const r = returns[path];
      return r ? r(...args) : undefined;
    },
  });
}
const ctx = {
  db: proxy("db"), rs: proxy("rs"), sh: proxy("sh"),
  print: () => {}, sleep: () => {}, MinKey: () => ({ $minKey: 1 }),
  process: { env: { NATTER_MONGO_PASSWORD: "pw", ADMIN_PASSWORD: "pw" } },
};
vm.runInNewContext(fs.readFileSync(process.argv[2], "utf8"), ctx, { filename: process.argv[2] });
process.stdout.write(JSON.stringify(calls));
`

type call struct {
	Fn   string            `json:"fn"`
	Args []json.RawMessage `json:"args"`
}

// runRecorded runs a mongosh script under node with the recorder and
// returns its calls, or nil if node is not installed.
func runRecorded(t *testing.T, script string) []call {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Logf("node not installed: %s checked by its text only", script)
		return nil
	}
	h := filepath.Join(t.TempDir(), "recorder.js")
	if err := os.WriteFile(h, []byte(recorder), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(node, h, script).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node %s: %v\n%s", script, err, stderr)
	}
	var calls []call
	if err := json.Unmarshal(out, &calls); err != nil {
		t.Fatalf("%s: %v: %s", script, err, out)
	}
	return calls
}

// called returns the calls of fn with their arguments as compact JSON.
func called(calls []call, fn string) [][]string {
	var out [][]string
	for _, c := range calls {
		if c.Fn == fn {
			var args []string
			for _, a := range c.Args {
				args = append(args, string(a))
			}
			out = append(out, args)
		}
	}
	return out
}

// TestMongoScripts checks infra/mongodb/init-replset.js and shard.js: by
// text always (the collection, the shard key, the unique conv_seq index,
// majority write concern), and, when node is installed, by running them
// against a recording stand-in of mongosh: a 3-member rs.initiate, majority
// defaults, natter's user on its database, the conv_seq index, messages
// sharded on {conv: 1, seq: 1} unique, pre-split into 32 ranges dealt
// round-robin over the shards, and the small collections on hashed _id.
func TestMongoScripts(t *testing.T) {
	t.Parallel()
	initJS := filepath.Join("mongodb", "init-replset.js")
	shardJS := filepath.Join("mongodb", "shard.js")
	for _, c := range []struct {
		file string
		want []string
	}{
		{initJS, []string{"rs.initiate(", "messages.createIndex({ conv: 1, seq: 1 }", `name: "conv_seq", unique: true`, `w: "majority"`, `role: "readWrite"`}},
		{shardJS, []string{"sh.shardCollection(`${dbName}.messages`, { conv: 1, seq: 1 }, true)", `name: "conv_seq", unique: true`, `{ _id: "hashed" }`}},
	} {
		src := readFile(t, c.file)
		for _, w := range c.want {
			if !strings.Contains(src, w) {
				t.Errorf("%s does not contain %s", c.file, w)
			}
		}
	}
	// The guide states the same key and write concern as the scripts and
	// the store.
	guide := readFile(t, filepath.Join("mongodb", "README.md"))
	for _, w := range []string{"{conv: 1, seq: 1}", "conv_seq", "writeconcern.Majority", "secondaryPreferred", "--mongo-read-preference", "mongodump", "--oplog"} {
		if !strings.Contains(guide, w) {
			t.Errorf("mongodb/README.md does not mention %s", w)
		}
	}

	if calls := runRecorded(t, initJS); calls != nil {
		ini := called(calls, "rs.initiate")
		if len(ini) != 1 || strings.Count(ini[0][0], `"host"`) != 3 || !strings.Contains(ini[0][0], `"_id":"rs0"`) {
			t.Errorf("init-replset.js: rs.initiate %v; want one call with 3 members of rs0", ini)
		}
		rw := called(calls, "db.adminCommand")
		if len(rw) != 1 || !strings.Contains(rw[0][0], `"setDefaultRWConcern":1`) || !strings.Contains(rw[0][0], `"w":"majority"`) {
			t.Errorf("init-replset.js: adminCommand %v; want setDefaultRWConcern with w majority", rw)
		}
		users := called(calls, "admin.createUser")
		if len(users) != 2 || !strings.Contains(users[1][0], `"user":"natter"`) || !strings.Contains(users[1][0], `"role":"readWrite","db":"natter"`) {
			t.Errorf("init-replset.js: createUser %v; want admin and natter (readWrite on natter)", users)
		}
		idx := called(calls, "natter.messages.createIndex")
		if len(idx) != 1 || idx[0][0] != `{"conv":1,"seq":1}` || idx[0][1] != `{"name":"conv_seq","unique":true}` {
			t.Errorf("init-replset.js: messages.createIndex %v; want {conv:1,seq:1} conv_seq unique", idx)
		}
	}

	if calls := runRecorded(t, shardJS); calls != nil {
		sc := called(calls, "sh.shardCollection")
		want := map[string]string{
			`"natter.messages"`:      `{"conv":1,"seq":1}`,
			`"natter.conversations"`: `{"_id":"hashed"}`,
			`"natter.users"`:         `{"_id":"hashed"}`,
			`"natter.cursors"`:       `{"_id":"hashed"}`,
		}
		for _, c := range sc {
			if key, ok := want[c[0]]; !ok || c[1] != key {
				t.Errorf("shard.js: shardCollection(%v); want one of %v", c, want)
			}
			if c[0] == `"natter.messages"` && (len(c) < 3 || c[2] != "true") {
				t.Errorf("shard.js: messages sharded without unique: %v", c)
			}
			delete(want, c[0])
		}
		if len(want) > 0 {
			t.Errorf("shard.js: never shards %v", want)
		}
		if n := len(called(calls, "sh.splitAt")); n != 31 {
			t.Errorf("shard.js: %d splits, want 31 (32 ranges: d_0..d_f, g_0..g_f)", n)
		}
		moves := called(calls, "sh.moveChunk")
		per := make(map[string]int)
		for _, m := range moves {
			per[m[2]]++
		}
		if len(moves) != 32 || len(per) != 3 || per[`"shardA"`] != 11 || per[`"shardC"`] != 10 {
			t.Errorf("shard.js: %d moves %v; want 32 ranges dealt round-robin over 3 shards", len(moves), per)
		}
	}
}
