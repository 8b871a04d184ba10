// Package attachments holds what the edge and the attachment roles share
// about uploaded files: the [Store] their bytes live in (the JetStream object
// store by default, S3-compatible storage in package s3store), the metadata
// of each upload in the ATTACHMENTS bucket ([Bucket]: owner, type, size,
// the conversations and messages it was sent in, the thumbnail) and the
// per-user byte counts the upload quota checks.
package attachments
