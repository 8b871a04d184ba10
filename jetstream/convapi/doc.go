// Package convapi is the contract of natter's conversations service
// (workers/convsvc): its ops and their subjects, the request and reply
// types, the stable error codes, the typed [Client] and the [MemberCache]
// that the edge and the fan-out worker use. It imports neither the store
// nor anything under workers/, so the socket tier (edge/) can depend on it
// without linking the database; the service implements it.
//
// # Endpoints

// Each op is an endpoint on subjects.ConvEndpoint(op) ("natter.conv.<op>").
// Requests are JSON objects; "user" is the acting user, set by the edge from
// the verified token and never taken from a client as is.
//
//	op              request                                   reply
//	create          {user, kind, with?, name?, members?}      natter.Conversation (with members)
//	get             {user, conv}                              natter.Conversation (members if <= MaxInlineMembers)
//	list            {user, after?}                            {convs, next?}
//	members.add     {user, conv, users}                       {}
//	members.remove  {user, conv, users}                       {}
//	members.list    {user, conv, after?}                      {members, next?}
//	members         {conv, after?}                            {members, next?}   (internal)
//	rename          {user, conv, name}                        {}
//	read            {user, conv, seq}                         {}
//	receipts        {user, conv, after?, limit?}              {reads: [{user, seq}], next?}
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
// server's max payload (a 100,000-member group of 64-character ids is 6 MB):
// a reply with "next" has more, asked for with "after": next. Members come
// sorted, conversations sorted by id. [Client] follows the pages for you.
//
// get and list carry each conversation's member_count, and its members for
// a direct conversation or a group of at most MaxInlineMembers: a few _id
// lookups each, never the member list of a large group (up to 100,000
// long). Use members.list for that.
//
// After every write to a member set (create included) and every rename the
// service publishes a core-NATS message on subjects.MembersChanged(conv)
// whose body ([Notice]) names the users whose conversation lists the write
// changed, {"users": [...]} (a change of many users sends several, each at
// most 64 KiB), so that caches drop their entries: [MemberCache] the
// conversation's, each instance's list cache those users' and the
// conversation's summary.
//
// After a change that succeeded, the service also pushes its conv frames
// (docs/protocol.md) to the devices concerned, on the users' delivery
// subjects with the header delivery.SignalHeader "conv": added or removed
// to the users the change named, members_added, members_removed or renamed
// to the other members (one broadcast by conversation for a large group,
// delivery.PackSignal), and marks the notice Pushed.
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
package convapi
