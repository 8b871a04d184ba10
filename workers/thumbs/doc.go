// Package thumbs is the thumbs worker role: for each image upload (a job on
// im.att.thumb.<id>, queued by the edge after the upload), it reads the
// stored original, scales it to fit a square (320 px by default) with
// golang.org/x/image/draw, stores the thumbnail next to it
// (<id>.thumb) and records it in the attachment's metadata. Messages never
// wait for it: GET /v1/attachments/{id}/thumb answers not_found until it is
// there.
package thumbs
