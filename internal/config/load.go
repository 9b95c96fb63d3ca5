package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
)

// ReadFileFunc reads a NAME_FILE secret or a CA bundle; cmd passes os.ReadFile.
type ReadFileFunc func(name string) ([]byte, error)

// Flags are the configuration flags registered on one FlagSet.
type Flags struct {
	fs     *flag.FlagSet
	values map[string]*flagValue // flag name without dashes
}

// flagValue records a flag as text; parsing happens in Load with the env values.
type flagValue struct {
	s      string
	isBool bool
}

func (f *flagValue) String() string     { return "" } // never echo a value (secrets)
func (f *flagValue) Set(s string) error { f.s = s; return nil }
func (f *flagValue) IsBoolFlag() bool   { return f.isBool }

// RegisterFlags adds a flag for every variable to fs (--data-folder, and
// --name-file for variables that accept NAME_FILE).
func RegisterFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{fs: fs, values: map[string]*flagValue{}}
	for _, v := range vars {
		name := flagName(v.Name)
		f.values[name] = &flagValue{isBool: v.IsBool}
		fs.Var(f.values[name], name, v.Name+": "+v.Desc)
		if v.File {
			f.values[name+"-file"] = &flagValue{}
			fs.Var(f.values[name+"-file"], name+"-file", "file holding "+v.Name)
		}
	}
	return f
}

// Load parses configuration flags in args (and nothing else) and the environment.
func Load(args, environ []string, readFile ReadFileFunc) (*Config, error) {
	fs := flag.NewFlagSet("vwstream", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, FlagError(err, "the flags listed in docs/CONFIGURATION.md")
	}
	if fs.NArg() > 0 {
		return nil, &Error{Name: "flags", Value: fs.Arg(0), HasValue: true, Reason: "unexpected argument", Accepted: "--name=value flags only"}
	}
	return f.Load(environ, readFile)
}

var flagInMessage = regexp.MustCompile(`(?:^|\s)-{1,2}([A-Za-z0-9][A-Za-z0-9_.-]*)`)

// FlagError turns an error of flag.FlagSet.Parse into a one-line *Error naming
// the flag as --name; accepted says where the valid flags are listed.
func FlagError(err error, accepted string) *Error {
	msg := err.Error()
	e := &Error{Name: "flags", Reason: msg, Accepted: accepted}
	if m := flagInMessage.FindStringSubmatch(msg); m != nil {
		e.Name = "--" + m[1]
	}
	switch {
	case strings.HasPrefix(msg, "flag provided but not defined"):
		e.Reason = "unknown flag"
	case strings.HasPrefix(msg, "flag needs an argument"):
		e.Reason = "needs a value"
	}
	return e
}

// Load resolves every variable from the parsed flags, then environ ("NAME=value"
// entries, as os.Environ returns), then defaults, and validates the result.
func (f *Flags) Load(environ []string, readFile ReadFileFunc) (*Config, error) {
	set := map[string]string{}
	if f != nil {
		f.fs.Visit(func(fl *flag.Flag) {
			if v, ok := f.values[fl.Name]; ok {
				set[fl.Name] = v.s
			}
		})
	}
	l := &loader{c: &Config{}, flags: set, env: envMap(environ), readFile: readFile}
	for _, v := range vars {
		if err := l.load(v); err != nil {
			return nil, err
		}
	}
	l.c.Rclone, l.c.rclone = collectRclone(environ)
	if err := l.finish(); err != nil {
		return nil, err
	}
	return l.c, nil
}

// Defaults is the configuration with nothing set, for tests and documentation.
func Defaults() *Config {
	c, err := Load(nil, nil, nil)
	if err != nil {
		panic("config: defaults do not validate: " + err.Error())
	}
	return c
}

// resolved is one variable's effective value and where it came from.
type resolved struct {
	v      *Var   // nil for RCLONE_CONFIG_* variables
	name   string // Var.Name, or the RCLONE_CONFIG_* name
	from   string // the variable, NAME_FILE or --flag that carried the value; "" for default
	source string // default | env NAME | file NAME_FILE | flag --x | file --x-file
	value  string
	path   string // the file a NAME_FILE value was read from
	secret bool
}

type loader struct {
	c        *Config
	flags    map[string]string
	env      map[string]string
	readFile ReadFileFunc
}

func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if _, dup := m[k]; ok && !dup { // the first wins, as in os.LookupEnv
			m[k] = v
		}
	}
	return m
}

// load resolves v (flag, then NAME/NAME_FILE, then each alias, then default) and parses it.
func (l *loader) load(v *Var) error {
	r, err := l.resolve(v)
	if err != nil {
		return err
	}
	l.c.resolved = append(l.c.resolved, r)
	if r.value == "" {
		return nil
	}
	err = v.set(l.c, r.value)
	var inv *invalid
	if errors.As(err, &inv) {
		e := &Error{Name: r.from, Value: r.value, HasValue: true, Secret: v.Secret, Reason: inv.reason, Accepted: inv.accepted}
		if e.Name == "" {
			e.Name = v.Name
		}
		if v.Secret {
			e.Reason = strings.ReplaceAll(e.Reason, r.value, "(hidden)")
		} else if strings.HasSuffix(r.source, "_FILE") || strings.HasSuffix(r.source, "-file") {
			e.Value = r.path // point at the file, not at its content
		}
		return e
	}
	return err
}

func (l *loader) resolve(v *Var) (resolved, error) {
	r := resolved{v: v, name: v.Name, secret: v.Secret, source: "default"}
	fl := flagName(v.Name)
	val, hasVal := l.flags[fl]
	path, hasFile := l.flags[fl+"-file"]
	switch {
	case hasVal && hasFile:
		return r, &Error{Name: "--" + fl, Reason: "set together with --" + fl + "-file", Accepted: "one of them"}
	case hasFile:
		return l.fromFile(r, "--"+fl+"-file", path)
	case hasVal:
		r.from, r.source, r.value = "--"+fl, "flag --"+fl, val
		if val == "" { // an empty flag restores the default, overriding the environment
			r.value = l.expand(v.Default)
		}
		return r, nil
	}
	for i, name := range append([]string{v.Name}, v.Aliases...) {
		val, path := l.env[name], ""
		if v.File {
			path = l.env[name+"_FILE"]
		}
		if val == "" && path == "" {
			continue
		}
		if val != "" && path != "" {
			return r, &Error{Name: name, Reason: "set together with " + name + "_FILE", Accepted: "one of them"}
		}
		l.warnShadowed(v, i)
		if path != "" {
			return l.fromFile(r, name+"_FILE", path)
		}
		r.from, r.source, r.value = name, "env "+name, val
		return r, nil
	}
	r.value = l.expand(v.Default)
	return r, nil
}

// warnShadowed notes an alias ignored because an earlier name of v is set.
func (l *loader) warnShadowed(v *Var, used int) {
	names := append([]string{v.Name}, v.Aliases...)
	for _, other := range names[used+1:] {
		if l.env[other] != "" || (v.File && l.env[other+"_FILE"] != "") {
			l.c.warnings = append(l.c.warnings, fmt.Sprintf("%s and %s are both set; using %s", names[used], other, names[used]))
		}
	}
}

func (l *loader) fromFile(r resolved, name, path string) (resolved, error) {
	const accepted = "a readable file (Docker secret)"
	if l.readFile == nil {
		return r, &Error{Name: name, Value: path, HasValue: true, Reason: "files cannot be read here", Accepted: accepted}
	}
	data, err := l.readFile(path)
	if err != nil {
		return r, &Error{Name: name, Value: path, HasValue: true, Reason: "cannot read: " + err.Error(), Accepted: accepted}
	}
	r.value = strings.TrimRight(string(data), "\r\n")
	if r.value == "" {
		return r, &Error{Name: name, Value: path, HasValue: true, Reason: "file is empty", Accepted: accepted}
	}
	r.from, r.source, r.path = name, "file "+name, path
	return r, nil
}

func (l *loader) expand(def string) string {
	return strings.ReplaceAll(def, "$DATA_FOLDER", l.c.DataFolder)
}

// lookup returns the resolved entry of a table variable.
func (c *Config) lookup(name string) resolved {
	for _, r := range c.resolved {
		if r.name == name {
			return r
		}
	}
	return resolved{name: name}
}

func cleanPath(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "./") {
		return "./" + filepath.Clean(s) // keep the ./ a user wrote: it says "relative"
	}
	return filepath.Clean(s)
}
