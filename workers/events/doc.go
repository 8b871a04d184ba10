// Package events is natter's event stream for consumers: every state change
// (message created, edited, deleted; member joined, left; conversation
// created, renamed; read cursor moved) is published once to the EVENTS stream on
// im.evt.<kind>.<conv> as a [natter.Event] envelope.
//
// Two producers write it:
//
//   - The worker role "events" ([Handler], behind the shared runner on its
//     own durable consumer EVENTS of the MSGS stream) turns each log entry
//     into message_created, message_edited or message_deleted.
//   - The conversations service publishes member_joined, member_left,
//     conversation_created, conversation_renamed and read_moved after its
//     writes, through a [Publisher].
//
// Exactly once: every event is published with Nats-Msg-Id = its id, and the
// id is derived from the change ([MessageEvent]: "msg:" + message id;
// [ConversationCreated]: "conv:" + conversation id; [ReadMoved]: "read:" +
// conv + user + seq; member events and renames: "join:"/"leave:"/"rename:"
// + conv + a version chosen once per change). A publish retried after a lost ack, or an entry
// redelivered to the events role, carries the same id and the stream
// stores it once. The dedup window (the stream's Duplicates, 2 minutes by
// default) bounds this: a redelivery later than that (an events worker that
// died between its publish and its ack and whose message came back only
// after the window) stores the event again with the same id, so consumers
// that must never see one twice dedupe by id.
package events
