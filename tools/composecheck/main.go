// Command composecheck validates a Compose file the way Docker Compose itself loads it, without a
// Docker engine: it runs the compose-spec reference loader (github.com/compose-spec/compose-go,
// the library `docker compose` is built on), which checks the file against the Compose JSON
// schema, interpolates variables, applies profiles and checks the model's consistency (e.g. that
// every depends_on names a service). On success it prints the loaded project as JSON, so a test
// can inspect the normalised form (commands split into argv, durations parsed); on failure it
// prints the loader's error to stderr and exits with status 1.
//
// Usage:
//
//	composecheck [-profile NAME]... COMPOSE_FILE
//
// Variables come from the process environment only (no .env file is read), so a test decides
// exactly which variables are set.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

// profiles collects repeated -profile flags.
type profiles []string

func (p *profiles) String() string { return strings.Join(*p, ",") }

func (p *profiles) Set(value string) error {
	*p = append(*p, value)
	return nil
}

func main() {
	var active profiles
	flag.Var(&active, "profile", "activate a Compose profile (repeatable)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: composecheck [-profile NAME]... COMPOSE_FILE")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	file, err := filepath.Abs(flag.Arg(0))
	if err != nil {
		fail(err)
	}
	options, err := cli.NewProjectOptions(
		[]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithOsEnv,
		cli.WithProfiles(active),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		fail(err)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	out, err := project.MarshalJSON()
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "composecheck: %v\n", err)
	os.Exit(1)
}
