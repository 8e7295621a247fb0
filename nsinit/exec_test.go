package nsinit

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExecServerRoundTrip runs the exec protocol in-process: the server starts
// commands as children of the test (no namespaces needed to test the protocol).
func TestExecServerRoundTrip(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, ExecSocketName)
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewExecServer(slog.New(slog.DiscardHandler))
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	run := func(stdin string, argv ...string) (string, string, int, error) {
		in, _ := os.Create(filepath.Join(dir, "in"))
		in.WriteString(stdin)
		in.Seek(0, 0)
		out, _ := os.Create(filepath.Join(dir, "out"))
		errf, _ := os.Create(filepath.Join(dir, "err"))
		defer in.Close()
		defer out.Close()
		defer errf.Close()
		code, err := Exec(dir, ExecRequest{Argv: argv, Env: []string{"PATH=/usr/bin:/bin", "GREETING=hi"}, Dir: "/nonexistent"}, in, out, errf)
		o, _ := os.ReadFile(out.Name())
		e, _ := os.ReadFile(errf.Name())
		return string(o), string(e), code, err
	}
	for _, tc := range []struct {
		name     string
		stdin    string
		argv     []string
		out, err string
		code     int
		fails    bool
		why      string // in the error, when it fails
	}{
		{name: "stdio, env and status", stdin: "x\n", argv: []string{"sh", "-c", "read v; echo $v $GREETING; pwd; echo e >&2; exit 4"}, out: "x hi\n/\n", err: "e\n", code: 4},
		{name: "killed by signal", argv: []string{"sh", "-c", "kill -9 $$"}, code: 137},
		{name: "not found", argv: []string{"definitely-not-a-command"}, code: 127, fails: true, why: "not found"},
		{name: "no such path", argv: []string{"/no/such/binary"}, code: 127, fails: true, why: "no such file"},
		{name: "not executable", argv: []string{"/etc/passwd"}, code: 126, fails: true, why: "permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, e, code, err := run(tc.stdin, tc.argv...)
			if (err != nil) != tc.fails || code != tc.code || o != tc.out || (!tc.fails && e != tc.err) {
				t.Fatalf("got out %q err %q code %d error %v", o, e, code, err)
			}
			if tc.fails && !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("error %v", err)
			}
		})
	}
}

func TestExecNotRunning(t *testing.T) {
	if _, err := Exec(t.TempDir(), ExecRequest{Argv: []string{"true"}}, os.Stdin, os.Stdout, os.Stderr); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("err = %v, want ErrNotRunning", err)
	}
}
