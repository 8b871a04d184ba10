package main

import (
	"errors"
	"flag"
	"io"

	"github.com/natter-im/natter/internal/cli"
)

// newFlags returns the flag set of a command; --help writes its usage to
// help (the command's stdout).
func newFlags(name, usage string, help io.Writer) *cli.FlagSet {
	return cli.New(name, "usage: "+usage+"\n\nflags (each also read from the environment variable shown):\n", help)
}

// parse parses args (flags, then their NATTER_* variables, then the range
// checks), reporting a bad command line as a usageError (exit 2); --help is
// flag.ErrHelp (exit 0).
func parse(fs *cli.FlagSet, args []string) error {
	err := fs.Parse(args, false)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError{err}
}

// Ranges of the flags shared by several commands.
var (
	// anyPort is a TCP port, or -1 for any free port.
	anyPort = cli.Port().Or("a port 1-65535, or -1 for any free port", -1)
)
