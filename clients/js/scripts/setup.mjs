// Makes clients/js ready to test, as "go tool task test:js" runs it on a
// fresh clone: npm ci when node_modules is missing or was installed from
// another package-lock.json (a hash of it is kept in node_modules), then
// the TypeScript compiler (type check, dist/ with .d.ts).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const dir = join(dirname(fileURLToPath(import.meta.url)), "..");
const stamp = join(dir, "node_modules", ".natter-lock-sha256");
const want = createHash("sha256").update(readFileSync(join(dir, "package-lock.json"))).digest("hex");
const have = existsSync(stamp) ? readFileSync(stamp, "utf8").trim() : "";

if (have !== want || !existsSync(join(dir, "node_modules", "typescript"))) {
  console.log("setup: npm ci (clients/js: node_modules missing or stale)");
  execFileSync(process.platform === "win32" ? "npm.cmd" : "npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: dir, stdio: "inherit" });
  writeFileSync(stamp, want + "\n");
}
execFileSync(process.execPath, [join(dir, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], { cwd: dir, stdio: "inherit" });
