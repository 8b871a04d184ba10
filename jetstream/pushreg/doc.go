// Package pushreg reads and writes the PUSH bucket: one key per device that
// registered for push notifications (<user>.<device>, subjects.PushKey),
// value the JSON [Registration]: the provider (apns, fcm or webpush) and
// its device token or Web Push subscription.
//
// The edge writes a registration (push.register replaces the device's
// previous one) and deletes it (push.unregister, a revocation of the device
// or the user); the push role reads every device of many users with one
// batched direct get per [MaxUsersPerGet] users ([Bucket.Users]) and deletes
// a registration a provider answered "unregistered" for only if nobody
// wrote the key since it was read ([Bucket.DeleteIf]), so a device that
// registered a new token meanwhile keeps it.
package pushreg
