// Package settings reads and writes the SETTINGS bucket: one user's
// settings of one conversation (natter.ConvSettings: mute notifications
// until a time, pin, archive, and the seq up to which the user cleared the
// history), key subjects.SettingsKey(user, conv), value JSON. The edge
// writes a key with a compare-and-set on its revision and reads a page's
// keys with one batched direct get ([Bucket.Get]), like the CURSORS
// bucket: the cost of a conv.list or sync page does not grow with the
// user's conversations.
package settings
