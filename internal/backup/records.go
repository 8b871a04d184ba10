package backup

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"

	"github.com/nats-io/nats.go"
)

// streamMagic starts every stream file.
const streamMagic = "NATTERBK1\n"

// maxField bounds a decoded length (a subject, header or payload): more is
// a corrupt file, not an allocation.
const maxField = 64 << 20

// record is one stream message in a backup file.
type record struct {
	Seq     uint64
	Subject string
	Header  nats.Header
	Data    []byte
}

// recordWriter writes records: uvarint seq, then subject, header and data,
// each length-prefixed (the header as a count of keys, each key with its
// count of values).
type recordWriter struct {
	w   *bufio.Writer
	buf []byte
}

func newRecordWriter(w io.Writer) (*recordWriter, error) {
	rw := &recordWriter{w: bufio.NewWriterSize(w, 256<<10)}
	_, err := rw.w.WriteString(streamMagic)
	return rw, err
}

func (rw *recordWriter) write(r *record) error {
	b := rw.buf[:0]
	b = binary.AppendUvarint(b, r.Seq)
	b = appendString(b, r.Subject)
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendString(b, k)
		vs := r.Header[k]
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			b = appendString(b, v)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(r.Data)))
	rw.buf = b
	if _, err := rw.w.Write(b); err != nil {
		return err
	}
	_, err := rw.w.Write(r.Data)
	return err
}

func (rw *recordWriter) flush() error { return rw.w.Flush() }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// recordReader reads what recordWriter wrote.
type recordReader struct {
	r *bufio.Reader
}

func newRecordReader(r io.Reader) (*recordReader, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic := make([]byte, len(streamMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != streamMagic {
		return nil, errors.New("not a natter stream backup file")
	}
	return &recordReader{r: br}, nil
}

// next returns the next record, or io.EOF after the last.
func (rr *recordReader) next() (*record, error) {
	seq, err := binary.ReadUvarint(rr.r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, err
	}
	r := &record{Seq: seq}
	if r.Subject, err = rr.str(); err != nil {
		return nil, err
	}
	nk, err := rr.n()
	if err != nil {
		return nil, err
	}
	if nk > 0 {
		r.Header = make(nats.Header, nk)
		for range nk {
			k, err := rr.str()
			if err != nil {
				return nil, err
			}
			nv, err := rr.n()
			if err != nil {
				return nil, err
			}
			vs := make([]string, 0, nv)
			for range nv {
				v, err := rr.str()
				if err != nil {
					return nil, err
				}
				vs = append(vs, v)
			}
			r.Header[k] = vs
		}
	}
	nd, err := rr.n()
	if err != nil {
		return nil, err
	}
	r.Data = make([]byte, nd)
	if _, err := io.ReadFull(rr.r, r.Data); err != nil {
		return nil, unexpected(err)
	}
	return r, nil
}

func (rr *recordReader) n() (uint64, error) {
	n, err := binary.ReadUvarint(rr.r)
	if err != nil {
		return 0, unexpected(err)
	}
	if n > maxField {
		return 0, fmt.Errorf("length %d out of range", n)
	}
	return n, nil
}

func (rr *recordReader) str() (string, error) {
	n, err := rr.n()
	if err != nil {
		return "", err
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(rr.r, b); err != nil {
		return "", unexpected(err)
	}
	return string(b), nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readBSON returns the next document of a concatenated-BSON reader, or
// io.EOF after the last.
func readBSON(r *bufio.Reader) ([]byte, error) {
	var l [4]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, unexpected(err)
	}
	n := binary.LittleEndian.Uint32(l[:])
	if n < 5 || n > maxField {
		return nil, fmt.Errorf("document length %d out of range", n)
	}
	doc := make([]byte, n)
	copy(doc, l[:])
	if _, err := io.ReadFull(r, doc[4:]); err != nil {
		return nil, unexpected(err)
	}
	return doc, nil
}

// hashReader hashes and counts what is read through it.
type hashReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func newHashReader(r io.Reader) *hashReader { return &hashReader{r: r, h: sha256.New()} }

func (h *hashReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

// drain reads the rest (so the digest covers the whole file) and returns
// the hex digest.
func (h *hashReader) sum() (string, error) {
	if _, err := io.Copy(io.Discard, h); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.h.Sum(nil)), nil
}
