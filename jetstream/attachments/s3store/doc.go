// Package s3store keeps attachment bytes in S3-compatible storage (AWS S3,
// MinIO, Ceph, R2, ...) through minio-go: the optional alternative to the
// JetStream object store (attachments.ObjectStore).
package s3store
