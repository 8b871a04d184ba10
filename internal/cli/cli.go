package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// FlagSet is a set of flags of one command, each also read from an
// environment variable. The zero value is not usable: see New.
type FlagSet struct {
	fs    *flag.FlagSet
	head  string
	help  io.Writer
	flags map[string]*value
	order []string
	// err is the first bad value, in the words of this package.
	err error
}

// value is one flag: its parser, its printer and its range check.
type value struct {
	name, env, usage, kind string
	set                    func(string) error
	get                    func() string
	check                  func() error
	def                    string
	onLine, fromEnv        bool
	f                      *FlagSet
}

func (v *value) String() string {
	if v == nil || v.get == nil {
		return ""
	}
	return v.get()
}

func (v *value) IsBoolFlag() bool { return v != nil && v.kind == "bool" }

func (v *value) Set(s string) error {
	if err := v.set(s); err != nil {
		v.f.note(v, err)
		return err
	}
	v.onLine = true
	return nil
}

// New returns the flag set of command name (e.g. "natter dev"). --help
// writes head and then the flag list to help.
func New(name, head string, help io.Writer) *FlagSet {
	f := &FlagSet{fs: flag.NewFlagSet(name, flag.ContinueOnError), head: head, help: help, flags: map[string]*value{}}
	f.fs.SetOutput(io.Discard)
	f.fs.Usage = func() {}
	return f
}

// Name is the command's name.
func (f *FlagSet) Name() string { return f.fs.Name() }

// Setting names flag name for a message: "--name (VARIABLE)", or "--name"
// for a flag without a variable.
func (f *FlagSet) Setting(name string) string {
	if v := f.flags[name]; v != nil && v.env != "" {
		return "--" + name + " (" + v.env + ")"
	}
	return "--" + name
}

// source names the flag as its value was given: "--name" on the command
// line, "--name (VARIABLE)" from the environment.
func (v *value) source() string {
	if v.fromEnv {
		return "--" + v.name + " (" + v.env + ")"
	}
	return "--" + v.name
}

func (f *FlagSet) note(v *value, err error) {
	if f.err == nil {
		f.err = fmt.Errorf("%s: %w", v.source(), err)
	}
}

func (f *FlagSet) add(v *value) {
	if _, dup := f.flags[v.name]; dup {
		panic("cli: flag --" + v.name + " registered twice")
	}
	v.f = f
	v.def = v.get()
	f.flags[v.name] = v
	f.order = append(f.order, v.name)
	f.fs.Var(v, v.name, v.usage)
}

// String registers a string flag read from env ("" = no variable).
func (f *FlagSet) String(p *string, name, env, def, usage string) {
	*p = def
	f.add(&value{name: name, env: env, usage: usage, kind: "string",
		set: func(s string) error { *p = s; return nil },
		get: func() string { return *p }})
}

// Bool registers a boolean flag.
func (f *FlagSet) Bool(p *bool, name, env string, def bool, usage string) {
	*p = def
	f.add(&value{name: name, env: env, usage: usage, kind: "bool",
		set: func(s string) error {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return fmt.Errorf("%q is not true or false", s)
			}
			*p = b
			return nil
		},
		get: func() string { return strconv.FormatBool(*p) }})
}

// Int registers an integer flag whose value must pass r.
func (f *FlagSet) Int(p *int, name, env string, def int, usage string, r Range[int]) {
	*p = def
	f.add(&value{name: name, env: env, usage: usage, kind: "int",
		set: func(s string) error {
			n, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, strconv.IntSize)
			if err != nil {
				return fmt.Errorf("%q is not an integer", s)
			}
			*p = int(n)
			return nil
		},
		get:   func() string { return strconv.Itoa(*p) },
		check: func() error { return r.check(*p) }})
}

// Float registers a number flag whose value must pass r.
func (f *FlagSet) Float(p *float64, name, env string, def float64, usage string, r Range[float64]) {
	*p = def
	f.add(&value{name: name, env: env, usage: usage, kind: "number",
		set: func(s string) error {
			n, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
				return fmt.Errorf("%q is not a number", s)
			}
			*p = n
			return nil
		},
		get:   func() string { return strconv.FormatFloat(*p, 'g', -1, 64) },
		check: func() error { return r.check(*p) }})
}

// Duration registers a duration flag (Go syntax: 500ms, 30s, 1h30m; a bare
// 0 is zero) whose value must pass r.
func (f *FlagSet) Duration(p *time.Duration, name, env string, def time.Duration, usage string, r Range[time.Duration]) {
	*p = def
	f.add(&value{name: name, env: env, usage: usage, kind: "duration",
		set: func(s string) error {
			d, err := ParseDuration(s)
			if err != nil {
				return err
			}
			*p = d
			return nil
		},
		get:   func() string { return p.String() },
		check: func() error { return r.check(*p) }})
}

// ParseDuration parses a Go duration; a number without a unit (other than
// 0) is refused with a message that says so.
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err == nil {
		return d, nil
	}
	if _, ferr := strconv.ParseFloat(strings.TrimSpace(s), 64); ferr == nil {
		return 0, fmt.Errorf("%q needs a unit, e.g. %ss", s, strings.TrimSpace(s))
	}
	return 0, fmt.Errorf("%q is not a duration (e.g. 500ms, 30s, 5m, 1h30m)", s)
}

// Func registers a flag parsed by set, which is called for every
// occurrence on the command line, or once with the variable's value.
func (f *FlagSet) Func(name, env, usage string, set func(string) error) {
	var last string
	f.add(&value{name: name, env: env, usage: usage, kind: "value",
		set: func(s string) error {
			if err := set(s); err != nil {
				return err
			}
			last = s
			return nil
		},
		get: func() string { return last }})
}

// IsSet reports whether flag name was given on the command line or by its
// variable.
func (f *FlagSet) IsSet(name string) bool {
	v := f.flags[name]
	return v != nil && (v.onLine || v.fromEnv)
}

// Args are the arguments after the flags.
func (f *FlagSet) Args() []string { return f.fs.Args() }

// Parse parses args, then sets every flag not on the command line from its
// variable when that is set and not empty, then checks every value's
// range. It returns flag.ErrHelp after writing the usage for -h and --help,
// and otherwise one error naming the flag (and the variable when the value
// came from it). Arguments left after the flags are an error unless
// allowArgs.
func (f *FlagSet) Parse(args []string, allowArgs bool) error {
	err := f.fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		f.Usage(f.help)
		return err
	}
	if f.err != nil {
		return f.err
	}
	if err != nil {
		return fmt.Errorf("%v (see %s --help)", strings.Replace(err.Error(), " -", " --", 1), f.Name())
	}
	for _, name := range f.order {
		v := f.flags[name]
		if v.onLine || v.env == "" {
			continue
		}
		s, ok := os.LookupEnv(v.env)
		if !ok || s == "" {
			continue
		}
		v.fromEnv = true
		if err := v.set(s); err != nil {
			f.note(v, err)
			return f.err
		}
	}
	for _, name := range f.order {
		v := f.flags[name]
		if v.check == nil {
			continue
		}
		if err := v.check(); err != nil {
			return fmt.Errorf("%s: %s is out of range: %w", v.source(), v.get(), err)
		}
	}
	if !allowArgs && f.fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see %s --help)", f.fs.Arg(0), f.Name())
	}
	return nil
}

// Usage writes the head and the flags, sorted, with their variables and
// defaults.
func (f *FlagSet) Usage(w io.Writer) {
	fmt.Fprint(w, f.head)
	names := append([]string(nil), f.order...)
	sort.Strings(names)
	for _, name := range names {
		v := f.flags[name]
		line := "  -" + name
		if v.kind != "bool" {
			line += " " + v.kind
		}
		u := v.usage
		if v.env != "" {
			u += " [" + v.env + "]"
		}
		if v.def != "" && v.def != "0" && v.def != "0s" && v.def != "false" {
			u += fmt.Sprintf(" (default %s)", v.def)
		}
		fmt.Fprintf(w, "%s\n    \t%s\n", line, strings.ReplaceAll(u, "\n", "\n    \t"))
	}
}

// SplitList splits a comma-separated list, dropping blanks and empty items.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
