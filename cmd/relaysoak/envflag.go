package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// envName is the environment variable that stands for a flag:
// --accounts-per-host is ACCOUNTS_PER_HOST.
func envName(flagName string) string {
	return strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags parses args, then fills every flag not given on the command line
// from its environment variable. A bad value names the variable.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: relaysoak %s [flags]\n\nflags (each also an environment variable, e.g. --accounts-per-host as ACCOUNTS_PER_HOST):\n", fs.Name())
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		// Empty counts as unset: docker-compose passes ${VAR:-} through empty.
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok || v == "" {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("environment variable %s=%q (flag --%s): %w", envName(f.Name), v, f.Name, e)
		}
	})
	return err
}
