// Package convsvc is natter's conversations service on the mesh: creating
// conversations, their members, read cursors and archived history, served
// as a nats.go micro service ([Start]) that any number of replicas run
// behind one queue group. [Client] is its typed client and [MemberCache] the
// membership cache the edge and the fan-out worker use.
//
// # Endpoints
//
// Each op is an endpoint on subjects.ConvEndpoint(op) ("natter.conv.<op>").
// Requests are JSON objects; "user" is the acting user, set by the edge from
// the verified token and never taken from a client as is.
//
//	op              request                                   reply
//	create          {user, kind, with?, name?, members?}      natter.Conversation (with members)
//	get             {user, conv}                              natter.Conversation (no members)
//	list            {user, after?}                            {convs, next?}
//	members.add     {user, conv, users}                       {}
//	members.remove  {user, conv, users}                       {}
//	members.list    {user, conv, after?}                      {members, next?}
//	members         {conv, after?}                            {members, next?}   (internal)
//	read            {user, conv, seq}                         {}
//	history         {user, conv, before?, after?, limit?}     {msgs, more}
//
// Ops for the service API (the api role), on behalf of a service identity
// that is the creator or actor but not a member, answering not_found for an
// unknown conversation:
//
//	service.create          {service, kind, name?, members}   natter.Conversation
//	service.members.add     {service, conv, users}            {}
//	service.members.remove  {service, conv, users}            {}
//	messages                {conv, before?, after?, limit?}   {msgs, more}      (internal history)
//	message                 {conv, id}                        natter.Message    (internal, archived)
//
// list, members.list and members are paged so that a reply always fits the
// server's max payload (a 50,000-member group of 64-character ids is 3 MB):
// a reply with "next" has more, asked for with "after": next. Members come
// sorted, conversations sorted by id. [Client] follows the pages for you.
//
// get has no member count: it answers from two _id lookups and never loads
// the member list, which can be 50,000 long. Use members.list for that.
//
// After every write to a member set (create included) the service publishes
// a core-NATS message on subjects.MembersChanged(conv) whose body names the
// users whose conversation lists the write changed, {"users": [...]} (a
// change of many users sends several, each at most 64 KiB), so that caches
// drop their entries: [MemberCache] the conversation's, each instance's
// list cache those users'.
//
// # List cache
//
// Every instance caches users' conversation lists (Config.ListCacheSize,
// Config.ListCacheTTL): a reconnecting client's sync asks for its list, and
// get, read and history check membership in it. A notice drops the named
// users' lists on every instance, a reconnect or a dropped notice drops
// them all, and a notice with no body (an older instance) drops them all
// too. The instance that makes a change drops the lists before it replies,
// and every lookup first applies the notices its connection has received,
// so a request sent after a change's reply sees the change on any instance
// served by the same NATS server. The list endpoint's data in micro's stats
// ($SRV.STATS) is the cache's [ListCacheStats].
//
// # Events
//
// With Config.Events set, the service publishes to the EVENTS stream after
// its writes and before its reply: conversation_created for a new
// conversation, member_joined / member_left for the users whose membership
// changed (none: no event), read_moved when a read cursor moved forward
// (see package events for the envelope and ids).
//
// # Errors
//
// A failed request gets a micro error reply (headers Nats-Service-Error-Code
// and Nats-Service-Error) with one of the stable codes [CodeBadFrame] (the
// description names the field), [CodeNotFound], [CodeNotMember],
// [CodeForbidden], [CodeTooBig], [CodeInternal] and [CodeUnavailable]
// (retryable). [Client] returns them as [*Error].
//
// Ops on behalf of a user answer not_member both when the conversation does
// not exist and when the user is not in it: a direct conversation's id can be
// computed by anyone (natter.DirectID), and whether two users talk must not
// leak. Only the internal members op answers not_found.
//
// Every field is validated before anything is written, so a bad request
// stores nothing. A valid change that fails half way (the store writes the
// conversation, then each user's list) still publishes its notice, and
// sending the same request again completes it: members.add and
// members.remove rewrite every named user, members or not.
package convsvc
