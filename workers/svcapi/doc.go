// Package svcapi is natter's service API: the request/reply interface for
// internal services (a billing system posting notices, a bot answering
// users) that sit on the NATS bus rather than on a WebSocket. It is a
// nats.go micro service (subjects.ServiceAPI, "natter-api") whose replicas
// share one queue group; the worker role "api" runs it. [Client] is its
// typed Go client.
//
// # Endpoints
//
// Each op is an endpoint on subjects.APIEndpoint(op) ("natter.api.<op>").
// Requests are JSON objects; "service" is the acting service identity (an
// id like "svc_billing", 1..64 characters of [A-Za-z0-9_-]). It is the
// sender of what the service sends and the actor of its events. Anyone who
// may publish to natter.api.* can act as any identity: the NATS
// permissions (infra/nats) keep these subjects to trusted services.
//
//	op              request                                        reply
//	send            {service, conv, cmid, body, type?}             natter.Ack
//	conv.create     {service, kind, name?, members}                natter.Conversation
//	members.add     {service, conv, users}                         {}
//	members.remove  {service, conv, users}                         {}
//	members.list    {service, conv}                                {members}
//	history         {service, conv, before?, after?, limit?}       {msgs, more}
//	msg.edit        {service, conv, ref, cmid, body}               natter.Ack
//	msg.delete      {service, conv, ref, cmid}                     natter.Ack
//
// A send has the guarantees of a client's send over a WebSocket: it is
// appended to the conversation log with msglog.Append (From = the service
// identity), so it gets the next seq, is durable before the reply, reaches
// every member, and a retry with the same cmid (for as long as the log or the
// archive holds the message) returns the original id and seq with dup set
// and stores nothing.
//
// The service is not a member of the conversations it writes to, creates
// or changes: a service is trusted with every conversation.
//
// Edits and deletes are entries appended to the log (the log stays
// append-only): Type natter.TypeEdit or natter.TypeDelete with Ref naming
// the message. Clients apply them (docs/protocol.md, "Edits and
// deletes"). A service may edit only what it sent; it may delete any
// message. ref must name a message of the conversation (not an edit or
// delete entry).
//
// # Errors
//
// A failed request gets a micro error reply (headers
// Nats-Service-Error-Code and Nats-Service-Error) with a stable code, the
// codes of the conversations service ([convapi.Error]): bad_frame (malformed
// JSON or a missing or invalid field; the description starts with the
// field name), not_found (unknown conversation or ref), too_big (body over
// the limit, 64 KiB by default), forbidden (editing another's message,
// changing a direct conversation), unavailable (retry with back-off) and
// internal. Every field is checked before anything is written: a request
// that fails stores nothing.
package svcapi
