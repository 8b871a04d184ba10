// Package admin serves natter's admin API: token revocation and user bans
// (REST on the process's admin/metrics listener), behind an admin
// credential that is not a user token. Every accepted call is published as
// an audit event on the EVENTS stream before it takes effect.
package admin
