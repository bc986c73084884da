package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix starts every environment variable that stands for a flag
// (k6's K6_ convention): a stray HOST or RATE in a user's shell never
// changes a run.
const EnvPrefix = "RELAYSOAK_"

// envName is the environment variable of a flag: --accounts-per-host is
// RELAYSOAK_ACCOUNTS_PER_HOST.
func envName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// kind is what a flag holds; the walking test generates bad values by kind.
type kind int

const (
	kindInt kind = iota
	kindFloat
	kindDuration
	kindSize
	kindString
	kindBool
	kindChoice
	kindInFile  // a file (or directory, where allowed) to read
	kindOutPath // a file or directory to create
	kindID      // a run ID: one path element
	kindAddr    // host:port to listen on
	kindURL     // an absolute URL with one of the allowed schemes
)

// decl is one flag, declared once: its name, environment variable,
// default, range and help all come from here.
type decl struct {
	name, help string
	kind       kind
	// lo and hi bound numbers, durations and sizes (inclusive); hasRange
	// says they are set. zero, when set, is what 0 means: 0 is then
	// allowed outside the range, and documented.
	lo, hi   float64
	hasRange bool
	zero     string
	choices  []string
	dirOK    bool // kindInFile: a directory is accepted too
	optional bool // kindInFile/kindOutPath: "" is allowed (not given)
	value    flag.Value
	// fromEnv is set when the value came from the environment, from when
	// it came from a run being repeated (its run.json).
	fromEnv bool
	from    string
	set     bool
}

// flags declares a subcommand's flags and positional arguments, then
// parses, fills from the environment and validates — all before anything
// starts.
type flags struct {
	cmd   string
	fs    *flag.FlagSet
	decls []*decl
	// args are the positional arguments' names ("FILE"); minArgs of them
	// are required.
	args    []string
	minArgs int
	// argsRead: the positional arguments are inputs (checked like InFile;
	// directories too when argsDirOK).
	argsRead, argsDirOK bool
	about               string
	// checks run after every flag is valid: rules across flags.
	checks []func() error
	// repeat, when set, is the flag naming a run to repeat, and recipe
	// reads that run's settings; keep are flags never taken from it.
	repeat string
	recipe func(path string) (map[string]string, error)
	keep   []string
}

func newFlags(cmd, about string) *flags {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are printed once, by parse's caller
	return &flags{cmd: cmd, fs: fs, about: about}
}

// Positional names the positional arguments; the first min are required.
func (f *flags) Positional(min int, names ...string) {
	f.args, f.minArgs = names, min
}

// PositionalInputs says the positional arguments are files to read (or
// directories, when dirOK), checked before the command runs.
func (f *flags) PositionalInputs(dirOK bool) { f.argsRead, f.argsDirOK = true, dirOK }

// Check adds a rule across flags, run after each flag is valid.
func (f *flags) Check(fn func() error) { f.checks = append(f.checks, fn) }

func (f *flags) add(d *decl, def string) *decl {
	if f.fs.Lookup(d.name) != nil {
		panic("relaysoak: flag --" + d.name + " declared twice in " + f.cmd)
	}
	f.fs.Var(d.value, d.name, d.help)
	if def != "" {
		if err := d.value.Set(def); err != nil {
			panic(fmt.Sprintf("relaysoak: default of --%s: %v", d.name, err))
		}
	}
	f.decls = append(f.decls, d)
	return d
}

// Int declares an integer flag in [lo, hi].
func (f *flags) Int(name string, def, lo, hi int, help string) *int {
	v := new(int)
	f.add(&decl{name: name, help: help, kind: kindInt, lo: float64(lo), hi: float64(hi), hasRange: true, value: (*intValue)(v)}, strconv.Itoa(def))
	return v
}

// Int64 declares a 64-bit integer flag in [lo, hi].
func (f *flags) Int64(name string, def, lo, hi int64, help string) *int64 {
	v := new(int64)
	f.add(&decl{name: name, help: help, kind: kindInt, lo: float64(lo), hi: float64(hi), hasRange: true, value: (*int64Value)(v)}, strconv.FormatInt(def, 10))
	return v
}

// Float declares a finite number in [lo, hi].
func (f *flags) Float(name string, def, lo, hi float64, help string) *float64 {
	v := new(float64)
	f.add(&decl{name: name, help: help, kind: kindFloat, lo: lo, hi: hi, hasRange: true, value: (*floatValue)(v)}, strconv.FormatFloat(def, 'g', -1, 64))
	return v
}

// Duration declares a duration in [lo, hi].
func (f *flags) Duration(name string, def, lo, hi time.Duration, help string) *time.Duration {
	v := new(time.Duration)
	f.add(&decl{name: name, help: help, kind: kindDuration, lo: float64(lo), hi: float64(hi), hasRange: true, value: (*durationValue)(v)}, def.String())
	return v
}

// Size declares a byte size in [lo, hi]: 4GiB, 4G, 4g, 4096MiB or bytes.
func (f *flags) Size(name string, def, lo, hi int64, help string) *int64 {
	v := new(int64)
	f.add(&decl{name: name, help: help, kind: kindSize, lo: float64(lo), hi: float64(hi), hasRange: true, value: (*sizeValue)(v)}, "")
	*v = def
	return v
}

// String declares a free-form string.
func (f *flags) String(name, def, help string) *string {
	v := new(string)
	f.add(&decl{name: name, help: help, kind: kindString, value: (*stringValue)(v)}, def)
	return v
}

// Choice declares a string that must be one of choices ("" allowed only
// when it is among them).
func (f *flags) Choice(name, def string, choices []string, help string) *string {
	v := new(string)
	f.add(&decl{name: name, help: help, kind: kindChoice, choices: choices, value: (*stringValue)(v)}, def)
	return v
}

// Bool declares a switch.
func (f *flags) Bool(name string, def bool, help string) *bool {
	v := new(bool)
	f.add(&decl{name: name, help: help, kind: kindBool, value: (*boolValue)(v)}, strconv.FormatBool(def))
	return v
}

// InFile declares a file to read: it must exist, be a regular file (or a
// directory when dirOK) and not be empty. optional allows "".
func (f *flags) InFile(name, def string, optional, dirOK bool, help string) *string {
	v := new(string)
	f.add(&decl{name: name, help: help, kind: kindInFile, optional: optional, dirOK: dirOK, value: (*stringValue)(v)}, def)
	return v
}

// OutPath declares a file or directory to create: nothing on the way to
// it may be a regular file. optional allows "".
func (f *flags) OutPath(name, def string, optional bool, help string) *string {
	v := new(string)
	f.add(&decl{name: name, help: help, kind: kindOutPath, optional: optional, value: (*stringValue)(v)}, def)
	return v
}

// ID declares a run ID: one path element, so the run directory is always
// inside the runs directory. "" means a default chosen by the command.
func (f *flags) ID(name, help string) *string {
	v := new(string)
	f.add(&decl{name: name, help: help, kind: kindID, optional: true, value: (*stringValue)(v)}, "")
	return v
}

// Addr declares a host:port to listen on; optional allows "".
func (f *flags) Addr(name, def string, optional bool, help string) *string {
	v := new(string)
	f.add(&decl{name: name, help: help, kind: kindAddr, optional: optional, value: (*stringValue)(v)}, def)
	return v
}

// URL declares an absolute URL whose scheme is one of schemes; "" is
// allowed (not given).
func (f *flags) URL(name, def string, schemes []string, help string) *string {
	v := new(string)
	f.add(&decl{name: name, help: help, kind: kindURL, optional: true, choices: schemes, value: (*stringValue)(v)}, def)
	return v
}

// Repeat declares a flag naming an earlier run whose settings (read by
// recipe, by flag name) fill every flag not given on the command line or
// in the environment; flags in keep are never taken from it.
func (f *flags) Repeat(name, help string, recipe func(path string) (map[string]string, error), keep ...string) {
	f.InFile(name, "", true, true, help)
	f.repeat, f.recipe, f.keep = name, recipe, keep
}

// KeepFromRecipe adds flags never taken from a repeated run: a command
// that sets them itself.
func (f *flags) KeepFromRecipe(names ...string) { f.keep = append(f.keep, names...) }

// Zero documents what 0 means for the last declared flag; 0 is then
// accepted even outside its range.
func (f *flags) Zero(meaning string) {
	f.decls[len(f.decls)-1].zero = meaning
}

// usageError is a bad flag, value, variable or argument: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// inputError is an input file that cannot be read: exit 5.
type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

// errHelp: -h was asked for; usage went to stdout.
var errHelp = errors.New("help")

// parse parses args (flags may come before, between or after positional
// arguments), fills unset flags from RELAYSOAK_* variables, and validates
// every value and the positional count. It returns the positional
// arguments. Errors are *usageError, *inputError or errHelp.
func (f *flags) parse(args []string) ([]string, error) {
	var pos []string
	rest := args
	for {
		if err := f.fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.usage(os.Stdout)
				return nil, errHelp
			}
			return nil, usagef("%s (see 'relaysoak %s -h')", f.explain(err), f.cmd)
		}
		rest = f.fs.Args()
		if len(rest) == 0 {
			break
		}
		// flag stops at the first positional argument or at "--"; a flag
		// after a positional one is still a flag.
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		rest = rest[1:]
	}
	f.fs.Visit(func(fl *flag.Flag) { f.find(fl.Name).set = true })
	for _, d := range f.decls {
		if d.set {
			continue
		}
		// Empty counts as unset: docker-compose passes ${VAR:-} through empty.
		v, ok := os.LookupEnv(envName(d.name))
		if !ok || v == "" {
			continue
		}
		if err := d.value.Set(v); err != nil {
			return nil, usagef("%s=%q (flag --%s): %v", envName(d.name), v, d.name, err)
		}
		d.set, d.fromEnv = true, true
	}
	if f.repeat != "" {
		if err := f.applyRecipe(); err != nil {
			return nil, err
		}
	}
	for _, d := range f.decls {
		if err := d.validate(); err != nil {
			return nil, err
		}
	}
	if len(pos) < f.minArgs {
		return nil, usagef("missing %s (usage: %s)", strings.Join(f.args[len(pos):f.minArgs], " "), f.synopsis())
	}
	if len(pos) > len(f.args) {
		extra := pos[len(f.args)]
		if strings.HasPrefix(extra, "-") {
			return nil, usagef("unexpected %q after \"--\" (usage: %s)", extra, f.synopsis())
		}
		return nil, usagef("unexpected argument %q (usage: %s)", extra, f.synopsis())
	}
	if f.argsRead {
		for i, p := range pos {
			if err := checkReadable(f.args[i], p, f.argsDirOK); err != nil {
				return nil, err
			}
		}
	}
	for _, c := range f.checks {
		if err := c(); err != nil {
			return nil, err
		}
	}
	return pos, nil
}

// flagErr matches the flag package's two parse errors, to reword them
// with the names a user types.
var (
	flagBadValue = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-([^:]+): (.*)$`)
	flagUnknown  = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	flagNoArg    = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
)

func (f *flags) explain(err error) string {
	msg := err.Error()
	if m := flagBadValue.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("--%s (%s): %s", m[2], envName(m[2]), m[3])
	}
	if m := flagUnknown.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("unknown flag --%s", m[1])
	}
	if m := flagNoArg.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("--%s needs a value", m[1])
	}
	return msg
}

// applyRecipe fills unset flags from the run named by the repeat flag.
func (f *flags) applyRecipe() error {
	rd := f.find(f.repeat)
	path := rd.value.String()
	if path == "" {
		return nil
	}
	if err := rd.validate(); err != nil {
		return err
	}
	m, err := f.recipe(path)
	if err != nil {
		return &inputError{fmt.Errorf("%s: %w", rd.where(), err)}
	}
	for _, d := range f.decls {
		v, ok := m[d.name]
		if !ok || d.set || d.name == f.repeat || slices.Contains(f.keep, d.name) {
			continue
		}
		if err := d.value.Set(v); err != nil {
			return usagef("--%s=%q from %s: %v", d.name, v, path, err)
		}
		d.set, d.from = true, path
	}
	return nil
}

// Given lists every flag set on the command line, in the environment or
// from a repeated run, with its value: the settings that repeat a run.
func (f *flags) Given() map[string]string {
	out := map[string]string{}
	for _, d := range f.decls {
		if d.set && d.name != f.repeat {
			out[d.name] = d.value.String()
		}
	}
	return out
}

func (f *flags) find(name string) *decl {
	for _, d := range f.decls {
		if d.name == name {
			return d
		}
	}
	panic("relaysoak: no flag --" + name)
}

// where names a flag the way the user gave it.
func (d *decl) where() string {
	if d.from != "" {
		return fmt.Sprintf("--%s (from %s)", d.name, d.from)
	}
	if d.fromEnv {
		return fmt.Sprintf("%s (flag --%s)", envName(d.name), d.name)
	}
	return fmt.Sprintf("--%s (%s)", d.name, envName(d.name))
}

// Where names flag name of this command as the user gave it, for errors
// found after parsing.
func (f *flags) Where(name string) string { return f.find(name).where() }

func (d *decl) validate() error {
	switch d.kind {
	case kindInt, kindFloat, kindDuration, kindSize:
		x := d.number()
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return usagef("%s must be a finite number, not %s", d.where(), d.value)
		}
		if x == 0 && d.zero != "" {
			return nil
		}
		if d.hasRange && (x < d.lo || x > d.hi) {
			return usagef("%s must be %s, not %s", d.where(), d.rangeText(), d.value)
		}
	case kindChoice:
		s := d.value.String()
		if !slices.Contains(d.choices, s) {
			return usagef("%s must be one of %s, not %q", d.where(), strings.Join(quoted(d.choices), ", "), s)
		}
	case kindInFile:
		p := d.value.String()
		if p == "" {
			if d.optional {
				return nil
			}
			return usagef("%s is required", d.where())
		}
		return checkReadable(d.where(), p, d.dirOK)
	case kindOutPath:
		p := d.value.String()
		if p == "" {
			if d.optional {
				return nil
			}
			return usagef("%s is required", d.where())
		}
		if err := creatable(p); err != nil {
			return usagef("%s: %v", d.where(), err)
		}
	case kindID:
		if err := ValidRunID(d.value.String()); err != nil {
			return usagef("%s: %v", d.where(), err)
		}
	case kindAddr:
		a := d.value.String()
		if a == "" && d.optional {
			return nil
		}
		_, port, err := net.SplitHostPort(a)
		if err != nil {
			return usagef("%s: %q is not host:port (e.g. 127.0.0.1:2480)", d.where(), a)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return usagef("%s: %q: port must be 0 to 65535", d.where(), a)
		}
	case kindURL:
		s := d.value.String()
		if s == "" {
			return nil
		}
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || !slices.Contains(d.choices, u.Scheme) {
			return usagef("%s: %q is not a %s URL", d.where(), s, strings.Join(d.choices, " or "))
		}
	}
	return nil
}

// checkReadable: p, named by what, must exist, be a regular file (or a
// directory when dirOK) and not be empty; else an *inputError (exit 5).
func checkReadable(what, p string, dirOK bool) error {
	st, err := os.Stat(p)
	switch {
	case err != nil:
		return &inputError{fmt.Errorf("%s: cannot read %s: %w", what, p, unwrapPathError(err))}
	case st.IsDir() && !dirOK:
		return &inputError{fmt.Errorf("%s: %s is a directory, not a file", what, p)}
	case !st.IsDir() && !st.Mode().IsRegular():
		return &inputError{fmt.Errorf("%s: %s is not a regular file", what, p)}
	case !st.IsDir() && st.Size() == 0:
		return &inputError{fmt.Errorf("%s: %s is empty", what, p)}
	}
	return nil
}

// unwrapPathError drops the path an *os.PathError repeats.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// creatable says whether p could be created: the nearest existing
// ancestor must be a directory (a path under a regular file never can).
func creatable(p string) error {
	dir := filepath.Dir(filepath.Clean(p))
	for {
		st, err := os.Stat(dir)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("%s cannot be created: %s is not a directory", p, dir)
			}
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s cannot be created: %w", p, err)
		}
		up := filepath.Dir(dir)
		if up == dir {
			return nil
		}
		dir = up
	}
}

var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidRunID accepts "" (a default is chosen) or one path element of
// letters, digits, '.', '_' and '-', not starting with a dot.
func ValidRunID(id string) error {
	if id == "" {
		return nil
	}
	if !runIDPattern.MatchString(id) || strings.Contains(id, "..") {
		return fmt.Errorf("run ID %q must be letters, digits, '.', '_' and '-' (no '/', no '..', at most 128), e.g. nightly-42", id)
	}
	return nil
}

func quoted(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// number is the flag's value as a float, for range checks.
func (d *decl) number() float64 {
	switch v := d.value.(type) {
	case *intValue:
		return float64(*v)
	case *int64Value:
		return float64(*v)
	case *floatValue:
		return float64(*v)
	case *durationValue:
		return float64(*v)
	case *sizeValue:
		return float64(*v)
	}
	return 0
}

// rangeText says the range the way the user writes values.
func (d *decl) rangeText() string {
	f := func(x float64) string {
		switch d.kind {
		case kindDuration:
			return time.Duration(x).String()
		case kindSize:
			return formatSize(int64(x))
		case kindInt:
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	var s string
	switch {
	case d.hi >= math.MaxInt64/2 || d.hi == math.MaxFloat64:
		s = "at least " + f(d.lo)
	default:
		s = "from " + f(d.lo) + " to " + f(d.hi)
	}
	if d.zero != "" {
		s += " (or 0: " + d.zero + ")"
	}
	return s
}

func (f *flags) synopsis() string {
	s := "relaysoak " + f.cmd + " [flags]"
	for i, a := range f.args {
		if i < f.minArgs {
			s += " " + a
		} else {
			s += " [" + a + "]"
		}
	}
	return s
}

// usage prints the synopsis, what the command does, and every flag with
// its variable, default and range.
func (f *flags) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s\n\n", f.synopsis())
	if f.about != "" {
		fmt.Fprintf(w, "%s\n\n", strings.TrimSpace(f.about))
	}
	if len(f.decls) == 0 {
		return
	}
	fmt.Fprintln(w, "flags (each also an environment variable; flags may follow the arguments):")
	for _, d := range f.decls {
		fmt.Fprintf(w, "  --%s %s  [%s]\n", d.name, d.typeName(), envName(d.name))
		fmt.Fprintf(w, "      %s", d.help)
		var notes []string
		if def := d.value.String(); def != "" && def != "0" && def != "false" && def != "0s" {
			notes = append(notes, "default "+def)
		}
		switch {
		case d.hasRange:
			notes = append(notes, d.rangeText())
		case d.kind == kindChoice:
			notes = append(notes, "one of "+strings.Join(d.choices, ", "))
		}
		if len(notes) > 0 {
			fmt.Fprintf(w, " (%s)", strings.Join(notes, "; "))
		}
		fmt.Fprintln(w)
	}
}

func (d *decl) typeName() string {
	return map[kind]string{kindInt: "N", kindFloat: "X", kindDuration: "DURATION", kindSize: "SIZE", kindString: "TEXT",
		kindBool: "", kindChoice: "WORD", kindInFile: "PATH", kindOutPath: "PATH", kindID: "ID", kindAddr: "HOST:PORT", kindURL: "URL"}[d.kind]
}

// The flag.Value types. Numbers reject what strconv rejects; sizes parse
// the forms both this binary and docker-compose accept.

type intValue int

func (v *intValue) Set(s string) error {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, strconv.IntSize)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", s)
	}
	*v = intValue(n)
	return nil
}
func (v *intValue) String() string { return strconv.Itoa(int(*v)) }

type int64Value int64

func (v *int64Value) Set(s string) error {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", s)
	}
	*v = int64Value(n)
	return nil
}
func (v *int64Value) String() string { return strconv.FormatInt(int64(*v), 10) }

type floatValue float64

func (v *floatValue) Set(s string) error {
	x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return fmt.Errorf("%q is not a number", s)
	}
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return fmt.Errorf("%q is not a finite number", s)
	}
	*v = floatValue(x)
	return nil
}
func (v *floatValue) String() string { return strconv.FormatFloat(float64(*v), 'g', -1, 64) }

type durationValue time.Duration

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not a duration (try 30s, 10m or 2h)", s)
	}
	*v = durationValue(d)
	return nil
}
func (v *durationValue) String() string { return time.Duration(*v).String() }

type sizeValue int64

func (v *sizeValue) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*v = sizeValue(n)
	return nil
}
func (v *sizeValue) String() string { return formatSize(int64(*v)) }

type stringValue string

func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }
func (v *stringValue) String() string     { return string(*v) }

type boolValue bool

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not true or false", s)
	}
	*v = boolValue(b)
	return nil
}
func (v *boolValue) String() string   { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) IsBoolFlag() bool { return true }

// parseSize reads a byte size in the forms relaysoak and docker-compose
// both write: 4GiB, 4G, 4g, 4gb, 4096MiB, 512m, 64KiB, 64k or a plain
// count of bytes. Units are binary. A size must be a whole number of bytes.
func parseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"gib", 1 << 30}, {"mib", 1 << 20}, {"kib", 1 << 10}, {"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10},
		{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}, {"b", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.mult
			break
		}
	}
	x, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, fmt.Errorf("%q is not a size (try 4GiB, 4g or 512MiB)", s)
	}
	b := x * float64(mult)
	if b != math.Trunc(b) || b > math.MaxInt64/2 || b < -math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is not a whole number of bytes (try 4GiB, 4g or 512MiB)", s)
	}
	return int64(b), nil
}

// formatSize writes a size for help and errors (2GiB, 512MiB).
func formatSize(n int64) string {
	switch {
	case n != 0 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n != 0 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n != 0 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10)
}
