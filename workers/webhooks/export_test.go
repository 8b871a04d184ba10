package webhooks

// Internals under test in package webhooks_test.
var (
	Backoff         = backoff
	ParseRetryAfter = parseRetryAfter
)
