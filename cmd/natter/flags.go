package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// fset wraps a flag.FlagSet whose every flag also reads a NATTER_* variable.
// Precedence: flag, then environment, then default.
type fset struct {
	*flag.FlagSet
	envErr error
	// envNames maps each flag to its environment variable.
	envNames map[string]string
}

func newFlags(name, usage string) *fset {
	fs := &fset{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError)}
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "usage: %s\n\nflags (each also read from the environment variable shown):\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

func (f *fset) env(name, envName string) (string, bool) {
	if f.envNames == nil {
		f.envNames = map[string]string{}
	}
	f.envNames[name] = envName
	v, ok := os.LookupEnv(envName)
	return v, ok && v != ""
}

func (f *fset) setEnvErr(name, envName string, err error) {
	if f.envErr == nil {
		f.envErr = fmt.Errorf("--%s (%s): %v", name, envName, err)
	}
}

func (f *fset) str(p *string, name, envName, def, usage string) {
	if v, ok := f.env(name, envName); ok {
		def = v
	}
	f.StringVar(p, name, def, usage+" ["+envName+"]")
}

func (f *fset) integer(p *int, name, envName string, def int, usage string) {
	if v, ok := f.env(name, envName); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			f.setEnvErr(name, envName, fmt.Errorf("not an integer: %q", v))
		} else {
			def = n
		}
	}
	f.IntVar(p, name, def, usage+" ["+envName+"]")
}

func (f *fset) float(p *float64, name, envName string, def float64, usage string) {
	if v, ok := f.env(name, envName); ok {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			f.setEnvErr(name, envName, fmt.Errorf("not a number: %q", v))
		} else {
			def = n
		}
	}
	f.Float64Var(p, name, def, usage+" ["+envName+"]")
}

func (f *fset) duration(p *time.Duration, name, envName string, def time.Duration, usage string) {
	if v, ok := f.env(name, envName); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			f.setEnvErr(name, envName, fmt.Errorf("not a duration: %q", v))
		} else {
			def = d
		}
	}
	f.DurationVar(p, name, def, usage+" ["+envName+"]")
}

func (f *fset) boolean(p *bool, name, envName string, def bool, usage string) {
	if v, ok := f.env(name, envName); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			f.setEnvErr(name, envName, fmt.Errorf("not true or false: %q", v))
		} else {
			def = b
		}
	}
	f.BoolVar(p, name, def, usage+" ["+envName+"]")
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
