package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/internal/backup"
	"github.com/natter-im/natter/internal/cli"
	"github.com/natter-im/natter/internal/node"
)

const (
	backupUsage  = "natter backup [--incremental] (--dir DIR | --s3-endpoint URL --s3-bucket B) (--nats-url URL --mongo-uri URI | --data DIR)"
	verifyUsage  = "natter backup verify (--dir DIR | --s3-endpoint URL --s3-bucket B) [--backup ID]"
	listUsage    = "natter backup list (--dir DIR | --s3-endpoint URL --s3-bucket B)"
	restoreUsage = "natter restore (--dir DIR | --s3-endpoint URL --s3-bucket B) [--backup ID] [--force] (--nats-url URL --mongo-uri URI | --data DIR)"
)

// targetFlags locate the backups: a directory or an S3 bucket.
type targetFlags struct {
	dir                                    string
	s3Endpoint, s3Bucket, s3Prefix, region string
	s3AccessKey                            string
	s3PathStyle                            bool
	s3Secret                               secretFlags
	progress                               string
}

func (f *targetFlags) register(fs *cli.FlagSet) {
	fs.String(&f.dir, "dir", "NATTER_BACKUP_DIR", "", "directory of the backups (one folder per backup; not with --s3-endpoint)")
	fs.String(&f.s3Endpoint, "s3-endpoint", "NATTER_BACKUP_S3_ENDPOINT", "", "S3-compatible storage of the backups, http(s)://host[:port] (not with --dir)")
	fs.String(&f.s3Bucket, "s3-bucket", "NATTER_BACKUP_S3_BUCKET", "", "S3 bucket of the backups (must exist)")
	fs.String(&f.s3Prefix, "s3-prefix", "NATTER_BACKUP_S3_PREFIX", "", "prefix of the backups' object names in the bucket")
	fs.String(&f.region, "s3-region", "NATTER_BACKUP_S3_REGION", "us-east-1", "S3 region of the bucket")
	fs.String(&f.s3AccessKey, "s3-access-key", "NATTER_BACKUP_S3_ACCESS_KEY", "", "S3 access key id")
	f.s3Secret.register(fs, "s3-secret-key", "NATTER_BACKUP_S3_SECRET_KEY", "the S3 secret access key")
	fs.Bool(&f.s3PathStyle, "s3-path-style", "NATTER_BACKUP_S3_PATH_STYLE", false, "address the bucket in the path (MinIO and most self-hosted servers) instead of the host name")
	fs.String(&f.progress, "progress", "NATTER_BACKUP_PROGRESS", "auto", "progress on stderr: bar (redrawn in place), lines (one every 5s), off, or auto (bar on a terminal, else lines)")
}

func (f *targetFlags) target() (backup.Target, error) {
	switch {
	case f.dir != "" && f.s3Endpoint != "":
		return nil, usageError{fmt.Errorf("--dir (NATTER_BACKUP_DIR) and --s3-endpoint (NATTER_BACKUP_S3_ENDPOINT): give one")}
	case f.dir != "":
		return backup.Dir(f.dir), nil
	case f.s3Endpoint != "":
		secret, err := f.s3Secret.get()
		if err != nil {
			return nil, err
		}
		t, err := backup.NewS3(backup.S3Config{Endpoint: f.s3Endpoint, Bucket: f.s3Bucket, Prefix: f.s3Prefix, Region: f.region,
			AccessKey: f.s3AccessKey, SecretKey: secret, PathStyle: f.s3PathStyle})
		if err != nil {
			return nil, usageError{err}
		}
		return t, nil
	}
	return nil, usageError{fmt.Errorf("--dir (NATTER_BACKUP_DIR) or --s3-endpoint (NATTER_BACKUP_S3_ENDPOINT): required")}
}

func (f *targetFlags) progressOn(stderr io.Writer, verb string) (*backup.Progress, error) {
	switch f.progress {
	case "off":
		return nil, nil
	case "bar":
		return backup.NewProgress(stderr, true, verb), nil
	case "lines":
		return backup.NewProgress(stderr, false, verb), nil
	case "auto":
		return backup.NewProgress(stderr, isTerminal(stderr), verb), nil
	}
	return nil, usageError{fmt.Errorf("--progress (NATTER_BACKUP_PROGRESS): %q is not bar, lines, off or auto", f.progress)}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// deployment is what a backup reads or a restore writes: NATS and MongoDB
// given by URL, or a stopped natter dev's data dir.
type deployment struct {
	common commonFlags
	log    *slog.Logger // set by open
}

func (d *deployment) register(fs *cli.FlagSet) {
	fs.String(&d.common.data, "data", "NATTER_DATA", "", "a stopped natter dev's data dir: its embedded servers are started for the command (instead of --nats-url and --mongo-uri)")
	d.common.registerConn(fs, "", "NATS URL(s) of the deployment, comma-separated")
	d.common.mongoSecret.register(fs, "mongo-uri", "NATTER_MONGO_URI", "the deployment's MongoDB URI with credentials and TLS options")
	fs.String(&d.common.mongoDB, "mongo-db", "NATTER_MONGO_DB", "natter", "MongoDB database")
	fs.String(&d.common.logLevel, "log-level", "NATTER_LOG_LEVEL", "warn", "debug, info, warn or error")
	fs.String(&d.common.logFormat, "log-format", "NATTER_LOG_FORMAT", "text", "text or json")
}

// open connects to the deployment and returns its JetStream, database and
// a function that closes everything open returned.
func (d *deployment) open(ctx context.Context, stderr io.Writer, name string) (jetstream.JetStream, *mongo.Database, func(), error) {
	c := &d.common
	uri, err := c.mongoSecret.get()
	if err != nil {
		return nil, nil, nil, err
	}
	log, err := c.logger(stderr)
	if err != nil {
		return nil, nil, nil, err
	}
	d.log = log
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	natsURL := c.natsURL
	switch {
	case c.data != "" && (natsURL != "" || uri != ""):
		return nil, nil, nil, usageError{fmt.Errorf("--data (NATTER_DATA) and --nats-url/--mongo-uri: give one")}
	case c.data != "":
		lock, err := node.LockDataDir(c.data)
		if err != nil {
			return nil, nil, nil, err
		}
		closers = append(closers, func() { lock.Close() })
		emb, err := backup.StartEmbedded(ctx, c.data, log)
		if err != nil {
			closeAll()
			return nil, nil, nil, err
		}
		closers = append(closers, func() {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = emb.Stop(sctx)
		})
		natsURL, uri = emb.NATSURL(), emb.MongoURI()
	case natsURL == "" || uri == "":
		return nil, nil, nil, usageError{fmt.Errorf("--nats-url (NATTER_NATS_URL) and --mongo-uri (NATTER_MONGO_URI), or --data (NATTER_DATA): required")}
	}
	var cfg node.Config
	c.apply(&cfg)
	cfg.NATSURL = natsURL
	var nc *nats.Conn
	if c.data != "" {
		nc, err = nats.Connect(natsURL, nats.Name(name))
	} else {
		nc, err = dialNATS(cfg, name)
	}
	if err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	closers = append(closers, nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	mc, err := mongo.Connect(ctx, options.Client().ApplyURI(uri).SetAppName(name))
	if err != nil {
		closeAll()
		return nil, nil, nil, &node.SettingError{Setting: node.SettingMongoURI, Err: err}
	}
	closers = append(closers, func() { _ = mc.Disconnect(context.Background()) })
	return js, mc.Database(c.mongoDB), closeAll, nil
}

// runBackup implements "natter backup", "natter backup verify" and
// "natter backup list".
func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "verify":
			return runBackupVerify(ctx, args[1:], stdout, stderr)
		case "list":
			return runBackupList(ctx, args[1:], stdout)
		}
	}
	fs := newFlags("natter backup", backupUsage+"\n       "+verifyUsage+"\n       "+listUsage, stdout)
	var tf targetFlags
	var dep deployment
	var incremental bool
	tf.register(fs)
	dep.register(fs)
	fs.Bool(&incremental, "incremental", "NATTER_BACKUP_INCREMENTAL", false, "copy only what the streams received since the newest backup in the target (collections are copied in full either way)")
	if err := parse(fs, args); err != nil {
		return err
	}
	target, err := tf.target()
	if err != nil {
		return err
	}
	js, db, closeAll, err := dep.open(ctx, stderr, "natter-backup")
	if err != nil {
		return err
	}
	defer closeAll()
	p, err := tf.progressOn(stderr, "backup")
	if err != nil {
		return err
	}
	defer p.Stop()
	m, err := backup.Run(ctx, backup.Config{JS: js, DB: db, Target: target, Incremental: incremental, Version: version, Progress: p, Logger: dep.log})
	if err != nil {
		return err
	}
	p.Finish()
	var msgs, docs uint64
	for _, s := range m.Streams {
		msgs += s.Count
	}
	for _, c := range m.Collections {
		docs += c.Count
	}
	fmt.Fprintf(stdout, "%s backup %s: %d streams (%d messages), %d collections (%d documents) in %s\n",
		m.Kind, m.ID, len(m.Streams), msgs, len(m.Collections), docs, target)
	return nil
}

func runBackupVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("natter backup verify", verifyUsage, stdout)
	var tf targetFlags
	var id string
	tf.register(fs)
	fs.String(&id, "backup", "NATTER_BACKUP_ID", "", "the backup to check (with the backups it continues; empty = the newest)")
	if err := parse(fs, args); err != nil {
		return err
	}
	target, err := tf.target()
	if err != nil {
		return err
	}
	p, err := tf.progressOn(stderr, "verify")
	if err != nil {
		return err
	}
	defer p.Stop()
	rep, err := backup.Verify(ctx, target, id, p)
	if err != nil {
		return err
	}
	p.Finish()
	fmt.Fprintf(stdout, "ok: %d backup(s) %v: %d messages, %d documents, %d bytes checked\n", len(rep.Chain), rep.Chain, rep.Messages, rep.Documents, rep.Bytes)
	return nil
}

func runBackupList(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("natter backup list", listUsage, stdout)
	var tf targetFlags
	tf.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	target, err := tf.target()
	if err != nil {
		return err
	}
	ids, err := backup.List(ctx, target)
	if err != nil {
		return err
	}
	for _, id := range ids {
		m, err := backup.ReadManifest(ctx, target, id)
		if err != nil {
			fmt.Fprintf(stdout, "%s\tunreadable: %v\n", id, err)
			continue
		}
		fmt.Fprintf(stdout, "%s\t%s\tparent=%s\tnatter %s\n", m.ID, m.Kind, m.Parent, m.Version)
	}
	return nil
}

// runRestore implements "natter restore".
func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("natter restore", restoreUsage, stdout)
	var tf targetFlags
	var dep deployment
	var id string
	var force bool
	var replicas int
	tf.register(fs)
	dep.register(fs)
	fs.Int(&replicas, "replicas", "NATTER_RESTORE_REPLICAS", 0, "replicas of every restored stream and bucket (0 = as backed up; 1 to restore a cluster's backup into one server)", cli.Between(0, 5))
	fs.String(&id, "backup", "NATTER_BACKUP_ID", "", "the backup to restore (with the backups it continues; empty = the newest)")
	fs.Bool(&force, "force", "NATTER_RESTORE_FORCE", false, "restore into a deployment that holds data: natter's streams are deleted and the database's collections dropped first")
	if err := parse(fs, args); err != nil {
		return err
	}
	target, err := tf.target()
	if err != nil {
		return err
	}
	js, db, closeAll, err := dep.open(ctx, stderr, "natter-restore")
	if err != nil {
		return err
	}
	defer closeAll()
	p, err := tf.progressOn(stderr, "restore")
	if err != nil {
		return err
	}
	defer p.Stop()
	start := time.Now()
	rep, err := backup.Restore(ctx, backup.RestoreConfig{JS: js, DB: db, Target: target, ID: id, Force: force, Replicas: replicas, Progress: p, Logger: dep.log})
	if err != nil {
		return err
	}
	p.Finish()
	fmt.Fprintf(stdout, "restored %s (%s): %d messages, %d documents in %s\n", rep.Manifest.ID, rep.Manifest.Kind, rep.Messages, rep.Documents, time.Since(start).Round(time.Millisecond))
	return nil
}
