// Command relaysoak is the one binary of the rig: each job is a subcommand.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
)

// Exit statuses of every subcommand, one table for the whole binary (the
// README's copy is checked against it by a test).
const (
	exitOK           = 0   // PASS, or the command did what it was asked
	exitLeak         = 1   // LEAK, and nothing else; bisect-step: the commit keeps more
	exitUsage        = 2   // bad flags, values, environment variables or arguments
	exitInconclusive = 3   // INCONCLUSIVE; for run: verification short of its bar
	exitCrashed      = 4   // CRASHED: the relay died
	exitBadInput     = 5   // an input file cannot be read or parsed
	exitNotStarted   = 6   // could not start: Docker, ports, images
	exitFailed       = 7   // failed while running, after the load began (the report is still written)
	exitLost         = 8   // LOST: delivery short of its bar
	exitRetained     = 9   // RETAINED: RSS grows, what the relay keeps does not
	exitNotFound     = 10  // bisect: good and bad do not differ at step 0
	exitSkip         = 125 // bisect-step: skip this commit (git bisect run's skip)
	exitRigFailed    = 128 // bisect-step: not the commit's doing; git bisect run stops
)

// exitTable is the table above for -h and the README.
var exitTable = []struct {
	code int
	what string
}{
	{exitOK, "PASS, or the command did what it was asked (for `bisect-step`: the commit is good)"},
	{exitLeak, "LEAK (for `bisect-step`: the commit keeps more than the baseline)"},
	{exitUsage, "bad usage: a flag, value, environment variable or argument"},
	{exitInconclusive, "INCONCLUSIVE (for `run`: verification short of its bar; for `bisect`: step 0 could not tell, or skipped commits hide the first bad one)"},
	{exitCrashed, "CRASHED: the relay died"},
	{exitBadInput, "unreadable input: a file missing, empty, a directory, or not parseable"},
	{exitNotStarted, "could not start: Docker, ports, images (for `bisect`: the good or the bad end does not build)"},
	{exitFailed, "failed while running, after the load began (the report is still written)"},
	{exitLost, "LOST: the relay delivered less than `--min-delivery` of the commits due after the ramp-up"},
	{exitRetained, "RETAINED: the relay's resident memory grows while what it keeps (its live heap's floors) is flat: the allocator or runtime holds freed pages"},
	{exitNotFound, "`bisect`: the good and the bad end do not differ at step 0: nothing to bisect"},
	{exitSkip, "`bisect-step`: skip this commit (it does not build, or its A/B could not tell)"},
	{exitRigFailed, "`bisect-step`: not the commit's doing (the rig failed, a revision is unknown, the baseline does not build): `git bisect run` stops"},
}

// command is one subcommand. setup declares its flags and returns what runs
// once they are parsed and valid, so the flags can be listed (and tested)
// without running anything. Each command lives in its own file and
// registers itself in init.
type command struct {
	name    string // "soak", or "capture import" for a sub-subcommand
	summary string
	about   string // longer help, printed by -h
	setup   func(f *flags) func(args []string) int
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: relaysoak <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-16s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nEvery flag is also an environment variable: --accounts-per-host is %s.\n", envName("accounts-per-host"))
	fmt.Fprintln(w, "Run 'relaysoak <command> -h' for a command's flags; 'relaysoak --version' for versions.")
	fmt.Fprintln(w, "\nexit status:")
	for _, e := range exitTable {
		fmt.Fprintf(w, "  %d  %s\n", e.code, e.what)
	}
}

// version is the module's version, indigo's and Go's.
func version() string {
	v, indigo := "(devel)", "(unknown)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v += " " + s.Value
			}
		}
		for _, d := range bi.Deps {
			if d.Path == "github.com/bluesky-social/indigo" {
				indigo = d.Version
			}
		}
	}
	return fmt.Sprintf("relaysoak %s\nindigo %s\n%s", v, indigo, runtime.Version())
}

func main() { os.Exit(dispatch(os.Args[1:])) }

// dispatch finds the command, parses and validates its flags, and runs it.
func dispatch(args []string) int {
	if len(args) == 0 {
		usage(os.Stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(os.Stdout)
		return exitOK
	case "-version", "--version", "version":
		fmt.Println(version())
		return exitOK
	}
	name, rest := args[0], args[1:]
	if _, ok := commands[name]; !ok && len(rest) > 0 {
		if _, ok := commands[name+" "+rest[0]]; ok {
			name, rest = name+" "+rest[0], rest[1:]
		}
	}
	c, ok := commands[name]
	if !ok {
		if group := subcommands(name); len(group) > 0 {
			if len(rest) > 0 && rest[0] != "-h" && rest[0] != "--help" {
				fmt.Fprintf(os.Stderr, "relaysoak %s: unknown subcommand %q; use one of: %s\n", name, rest[0], strings.Join(group, ", "))
				return exitUsage
			}
			fmt.Fprintf(os.Stderr, "usage: relaysoak %s <%s> [flags]\n", name, strings.Join(group, "|"))
			if len(rest) > 0 {
				return exitOK
			}
			return exitUsage
		}
		msg := fmt.Sprintf("relaysoak: unknown command %q", name)
		if strings.HasPrefix(name, "-") {
			msg = fmt.Sprintf("relaysoak: unknown flag %q before a command", name)
		}
		fmt.Fprintln(os.Stderr, msg)
		fmt.Fprintln(os.Stderr)
		usage(os.Stderr)
		return exitUsage
	}
	f := newFlags(c.name, c.about)
	run := c.setup(f)
	pos, err := f.parse(rest)
	if err != nil {
		return reportParseError(c.name, err)
	}
	return run(pos)
}

// reportParseError prints err on one line naming the flag or file and
// returns its exit status.
func reportParseError(cmd string, err error) int {
	if errors.Is(err, errHelp) {
		return exitOK
	}
	fmt.Fprintf(os.Stderr, "relaysoak %s: %v\n", cmd, err)
	var ie *inputError
	if errors.As(err, &ie) {
		return exitBadInput
	}
	return exitUsage
}

// subcommands of a group ("capture": record, import…), sorted.
func subcommands(group string) []string {
	var out []string
	for n := range commands {
		if after, ok := strings.CutPrefix(n, group+" "); ok {
			out = append(out, after)
		}
	}
	sort.Strings(out)
	return out
}

// fail prints a command's error on one line and returns code.
func fail(cmd string, code int, format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "relaysoak %s: %s\n", cmd, fmt.Sprintf(format, args...))
	return code
}
