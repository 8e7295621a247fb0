package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var instanceSeq atomic.Int32

// instance is a running `unetes run --no-kubernetes`.
type instance struct {
	t    *testing.T
	u    *testUser
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// startInstance runs unetes as u with a fresh instance name and waits until it
// says it is ready. Cleanup stops it.
func startInstance(t *testing.T, u *testUser, extra ...string) *instance {
	t.Helper()
	return startInstanceNamed(t, u, newName(), extra...)
}

func newName() string { return fmt.Sprintf("e2e-%d-%d", os.Getpid(), instanceSeq.Add(1)) }

// startInstanceNamed is startInstance with a given name, to run one again.
func startInstanceNamed(t *testing.T, u *testUser, name string, extra ...string) *instance {
	t.Helper()
	return launch(t, u, name, append([]string{"--no-kubernetes"}, extra...))
}

// launch runs `unetes run --name name args...` and waits until it is ready.
func launch(t *testing.T, u *testUser, name string, extra []string) *instance {
	t.Helper()
	return launchEnv(t, u, name, extra, nil)
}

// launchEnv is launch with more environment variables for `unetes run`.
func launchEnv(t *testing.T, u *testUser, name string, extra, env []string) *instance {
	t.Helper()
	return start(t, u, name, append([]string{"run", "--name", name}, extra...), env)
}

// start runs `unetes ARGS...` (run, join) for instance name and waits until
// it says it is ready.
func start(t *testing.T, u *testUser, name string, args, env []string) *instance {
	t.Helper()
	in := &instance{t: t, u: u, name: name, out: &syncBuffer{}, done: make(chan struct{})}
	in.cmd = u.command(work.unetes, args...)
	in.cmd.Env = append(in.cmd.Env, env...)
	in.cmd.Stdout, in.cmd.Stderr = in.out, in.out
	if err := in.cmd.Start(); err != nil {
		t.Fatalf("start unetes run: %v", err)
	}
	go func() { in.cmd.Wait(); close(in.done) }()
	t.Cleanup(in.stop)
	deadline := time.After(4 * time.Minute)
	// The ready message ends with the "stop with Ctrl-C" line; wait for all of it.
	for !strings.Contains(in.out.String(), "stop with Ctrl-C") {
		select {
		case <-in.done:
			t.Fatalf("unetes run exited before ready:\n%s", in.out.String())
		case <-deadline:
			t.Fatalf("unetes run not ready after 4 minutes:\n%s", in.out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return in
}

// stop stops the instance with `unetes stop` and checks that run exited 0.
func (in *instance) stop() {
	select {
	case <-in.done:
		return
	default:
	}
	_, stderr, code := in.u.unetes(in.t, "", "stop", "--name", in.name)
	select {
	case <-in.done:
	case <-time.After(30 * time.Second):
		in.cmd.Process.Kill()
		<-in.done
		in.t.Errorf("unetes run did not exit after stop (stop: %d %s):\n%s", code, stderr, in.out.String())
		return
	}
	if code != 0 {
		in.t.Errorf("unetes stop exited %d: %s", code, stderr)
	}
	if ec := in.cmd.ProcessState.ExitCode(); ec != 0 {
		in.t.Errorf("unetes run exited %d after stop:\n%s", ec, in.out.String())
	}
}

// exec runs a command inside the instance.
func (in *instance) exec(stdin string, argv ...string) (stdout, stderr string, code int) {
	in.t.Helper()
	return in.u.unetes(in.t, stdin, append([]string{"exec", "--name", in.name, "--"}, argv...)...)
}

// nettool runs the test client inside the instance.
func (in *instance) nettool(args ...string) (stdout, stderr string, code int) {
	in.t.Helper()
	return in.exec("", append([]string{work.nettool}, args...)...)
}

func (in *instance) stateDir() string {
	return filepath.Join("/tmp", fmt.Sprintf("unetes-%d", in.u.uid), in.name)
}
