package backup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
)

// Report is what [Verify] checked.
type Report struct {
	// Chain is the backups checked, the full one first.
	Chain []string
	// Messages and Documents are the items read.
	Messages, Documents uint64
	// Bytes read.
	Bytes int64
}

// Verify checks backup id ("" = the newest) and the backups it continues
// without restoring anything: every manifest, that each incremental starts
// where its parent ended, and every file: its sha256, its item count, and
// that each stream file's sequences rise within the range its manifest
// gives. The first problem found is returned (ErrCorrupt, ErrChain or
// ErrNoBackup), naming the file.
func Verify(ctx context.Context, t Target, id string, p *Progress) (*Report, error) {
	chain, err := Chain(ctx, t, id)
	if err != nil {
		return nil, err
	}
	rep := &Report{}
	for _, m := range chain {
		rep.Chain = append(rep.Chain, m.ID)
		for _, s := range m.Streams {
			p.AddTotal(int64(s.Count))
		}
		for _, c := range m.Collections {
			p.AddTotal(int64(c.Count))
		}
	}
	for _, m := range chain {
		for _, s := range m.Streams {
			p.Phase(m.ID + " stream " + s.Name)
			if err := verifyStream(ctx, t, &s, rep, p); err != nil {
				return nil, err
			}
		}
		for _, c := range m.Collections {
			p.Phase(m.ID + " collection " + c.Name)
			if err := verifyCollection(ctx, t, &c, rep, p); err != nil {
				return nil, err
			}
		}
	}
	p.Finish()
	return rep, nil
}

func verifyStream(ctx context.Context, t Target, e *StreamEntry, rep *Report, p *Progress) error {
	f, err := t.Open(ctx, e.File)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, e.File, err)
	}
	defer f.Close()
	hr := newHashReader(f)
	rr, err := newRecordReader(hr)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, e.File, err)
	}
	var count, prev uint64
	for {
		rec, err := rr.next()
		if errors.Is(err, errEOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %s: record %d: %v", ErrCorrupt, e.File, count+1, err)
		}
		if rec.Seq <= prev || rec.Seq < e.FromSeq || rec.Seq > e.LastSeq {
			return fmt.Errorf("%w: %s: sequence %d out of order (after %d, range %d..%d)", ErrCorrupt, e.File, rec.Seq, prev, e.FromSeq, e.LastSeq)
		}
		prev = rec.Seq
		count++
		p.Add(1, int64(len(rec.Data)))
	}
	rep.Messages += count
	rep.Bytes += hr.n
	return checkFile(hr, e.File, e.SHA256, count, e.Count)
}

func verifyCollection(ctx context.Context, t Target, c *CollectionEntry, rep *Report, p *Progress) error {
	f, err := t.Open(ctx, c.File)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, c.File, err)
	}
	defer f.Close()
	hr := newHashReader(f)
	br := bufio.NewReaderSize(hr, 256<<10)
	var count uint64
	for {
		doc, err := readBSON(br)
		if errors.Is(err, errEOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %s: document %d: %v", ErrCorrupt, c.File, count+1, err)
		}
		count++
		p.Add(1, int64(len(doc)))
	}
	rep.Documents += count
	rep.Bytes += hr.n
	return checkFile(hr, c.File, c.SHA256, count, c.Count)
}
