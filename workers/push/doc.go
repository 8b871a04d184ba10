// Package push is the worker role that sends push notifications to the
// registered devices of members who are not connected: it takes log
// entries from the shared PUSH consumer on MSGS and, for every member of
// the entry's conversation other than the sender who has a device
// registered (jetstream/pushreg) that is not connected to any edge (the
// PRESENCE leases list each user's connected devices, jetstream/presencekv)
// and who has not muted the conversation ([Config.Muted]), sends one
// notification per such device through its provider: APNs ([APNs], HTTP/2
// with an ES256 provider token), FCM ([FCM], HTTP v1 with an OAuth2
// service-account access token) or Web Push ([WebPush], VAPID and RFC 8291
// payload encryption).
//
// Notifications collapse per conversation (apns-collapse-id, FCM
// collapse_key and tag, the Web Push Topic): a device shows the newest of
// a conversation. Entries of one conversation that arrive in one batch
// are sent as one notification per device (the newest). The badge is the
// user's unread count over every conversation, as sync's unread_total.
// The body goes to the providers only with [Config.Preview]; otherwise the
// text is [DefaultText].
//
// A provider's "unregistered" answer (APNs 410 or BadDeviceToken, FCM
// UNREGISTERED or 404, Web Push 404 or 410) deletes the registration unless
// the device registered again since. A send that fails with 429 or 5xx is
// retried in the handler with back-off (honouring Retry-After) up to
// [Config.Attempts] times; if it still fails, the entry is redelivered
// (the devices it reached are remembered by this replica and skipped) and
// dead-lettered after the consumer's MaxDeliver deliveries.
package push
