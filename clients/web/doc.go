// Package web holds natter's chat web app: its TypeScript sources (src/,
// built on the TypeScript SDK in clients/js), the built files in dist/ that
// the natter binary embeds and an edge serves at / (natter dev always,
// natter edge with --web-app), and the browser tests in test/.
//
// dist/ is committed, so that "go build" and "go tool task run" need
// nothing but Go; "go run ./clients/web/build" rebuilds it with esbuild's Go
// API, and that package's test fails when dist/ differs from what its
// sources build to.
package web
