// The SDK's bundle size, as clients/js/README.md states it: src/index.ts
// bundled and minified by esbuild (run through the Go module proxy, no npm
// package), then gzipped. Exits 1 above the target of 15 KiB gzipped.
//
//   node scripts/size.mjs     (go tool task size:js)
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const dir = join(dirname(fileURLToPath(import.meta.url)), "..");
const esbuild = "github.com/evanw/esbuild/cmd/esbuild@v0.28.2";
const min = execFileSync("go", ["run", esbuild, "src/index.ts", "--bundle", "--minify", "--format=esm", "--target=es2020", "--log-level=warning"], {
  cwd: dir,
  maxBuffer: 16 << 20,
});
const gz = gzipSync(min, { level: 9 }).length;
const kib = (n) => (n / 1024).toFixed(1) + " KiB";
console.log(`minified ${min.length} bytes (${kib(min.length)}), minified + gzip -9 ${gz} bytes (${kib(gz)}); target <= 15 KiB gzipped`);
if (gz > 15 * 1024) process.exit(1);
