// Package pushtest runs local stand-ins for the push services (APNs, FCM,
// Web Push) for tests and benchmarks: HTTPS servers (HTTP/2 for APNs) that
// check each request as the provider documents it (path, headers, the
// ES256 provider token, the OAuth2 bearer their token endpoint issued, the
// VAPID signature) and record the notifications they accept (Web Push
// payloads decrypted with the subscription's private keys). Requests that
// fail a check are answered as the provider would (400/403) and recorded
// in Errors, so a test can require none.
package pushtest
