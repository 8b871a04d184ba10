// Package admin serves natter's admin API (REST on the process's
// admin/metrics listener), behind an admin credential that is not a user
// token: token revocation and user bans, a user's sessions and devices on
// every edge and disconnecting them, erasing a user, and inspecting,
// freezing and deleting conversations. Every accepted call is published as
// an audit event on the EVENTS stream before it takes effect.
package admin
