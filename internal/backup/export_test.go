package backup

// WithTestHook returns cfg with a hook that runs between the steps of the
// cut ("archived": the archive's collections are read; "cut": the streams'
// last sequences are taken).
func WithTestHook(cfg Config, f func(step string)) Config {
	cfg.testHook = f
	return cfg
}
