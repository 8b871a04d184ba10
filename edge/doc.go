// Package edge is natter's client-facing tier: a Fiber app that upgrades
// WebSockets (fasthttp/websocket), checks tokens, origins, frame sizes and
// rates, and hands every piece of work to NATS: sends are appended to the
// JetStream log, conversation operations go to the conversations service,
// and deliveries arrive on per-user core-NATS subjects that the edge
// subscribes to once per connected user, and, for large groups, on one
// broadcast subject with the member list, which every edge subscribes to
// at start. REST endpoints serve clients
// without a socket with the same auth and errors.
package edge
