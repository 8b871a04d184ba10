package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/natter-im/natter/internal/cli"
)

// secretFlags is a secret given directly (flag or environment) or, better,
// as a file: --<name> and --<name>-file with NATTER_<ENV> and
// NATTER_<ENV>_FILE.
type secretFlags struct {
	name, env   string
	value, file string
}

func (s *secretFlags) register(fs *cli.FlagSet, name, env, usage string) {
	s.name, s.env = name, env
	fs.String(&s.value, name, env, "", usage+"; prefer --"+name+"-file or the environment (a flag shows in ps)")
	fs.String(&s.file, name+"-file", env+"_FILE", "", "file holding "+usage+" (trailing white space ignored)")
}

// get returns the secret ("" when neither is set); both set is an error.
func (s *secretFlags) get() (string, error) {
	if s.file == "" {
		return s.value, nil
	}
	if s.value != "" {
		return "", usageError{fmt.Errorf("--%s (%s) and --%s-file (%s_FILE): give one", s.name, s.env, s.name, s.env)}
	}
	data, err := os.ReadFile(s.file)
	if err != nil {
		return "", usageError{fmt.Errorf("--%s-file (%s_FILE): %w", s.name, s.env, err)}
	}
	v := strings.TrimSpace(string(data))
	if v == "" {
		return "", usageError{fmt.Errorf("--%s-file (%s_FILE): %s is empty", s.name, s.env, s.file)}
	}
	return v, nil
}
