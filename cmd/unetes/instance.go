package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/unetes/unetes/nsinit"
)

// instanceFlags are the flags every command that addresses an instance takes.
type instanceFlags struct {
	name string
}

func (f *instanceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.name, "name", nsinit.DefaultName, "instance name; two names are two independent instances")
}

// leadingName takes a leading --name N (or --name=N) off args, for commands
// whose other flags belong to the tool they wrap (kubectl, ctr).
func leadingName(args []string) (instanceFlags, []string) {
	switch {
	case len(args) >= 2 && args[0] == "--name":
		return instanceFlags{name: args[1]}, args[2:]
	case len(args) >= 1 && strings.HasPrefix(args[0], "--name="):
		return instanceFlags{name: strings.TrimPrefix(args[0], "--name=")}, args[1:]
	}
	return instanceFlags{name: nsinit.DefaultName}, args
}

// paths resolves the instance's directories from the process environment.
func (f *instanceFlags) paths() (nsinit.Paths, error) {
	home, _ := os.UserHomeDir()
	return nsinit.ResolvePaths(f.name, nsinit.Env{
		UID:           os.Getuid(),
		Home:          home,
		XDGRuntimeDir: os.Getenv("XDG_RUNTIME_DIR"),
		XDGDataHome:   os.Getenv("XDG_DATA_HOME"),
		XDGConfigHome: os.Getenv("XDG_CONFIG_HOME"),
	})
}

func currentUser() (nsinit.User, error) {
	u := nsinit.User{UID: os.Getuid(), GID: os.Getgid()}
	if pw, err := user.LookupId(strconv.Itoa(u.UID)); err == nil {
		u.Name = pw.Username
	} else {
		u.Name = strconv.Itoa(u.UID)
	}
	return u, nil
}

func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: unetes %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func newLogger(w io.Writer, role string, debug bool) *slog.Logger {
	lvl := slog.LevelInfo
	if debug {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl})).With("role", role)
}

// fail prints one error line (plus its hint lines) and returns exit status 1.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "unetes: %v\n", err)
	return 1
}
