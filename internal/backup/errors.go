package backup

import "errors"

var (
	// ErrNotEmpty: restore found natter data in the target deployment and
	// was not told to replace it (RestoreConfig.Force).
	ErrNotEmpty = errors.New("backup: target deployment is not empty")
	// ErrNoBackup: the target holds no backup (of the name given).
	ErrNoBackup = errors.New("backup: no backup found")
	// ErrCorrupt: a backup file does not match its manifest (checksum,
	// count, order) or cannot be decoded. The error names the file.
	ErrCorrupt = errors.New("backup: corrupt backup")
	// ErrChain: an incremental backup does not continue its parent (a
	// missing parent, or a stream whose sequences do not follow on).
	ErrChain = errors.New("backup: broken backup chain")
	// ErrSequence: a replayed message did not get its original stream
	// sequence (another writer on the stream during the restore?).
	ErrSequence = errors.New("backup: restored sequence differs")
)
