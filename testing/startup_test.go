package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStopDuringStartUp stops a Kubernetes instance at several moments of
// its start-up, with `unetes stop` and with Ctrl-C (SIGINT): each time run
// ends promptly with status 0, says so, and leaves no process; then the
// same instance starts cleanly.
func TestStopDuringStartUp(t *testing.T) {
	u := asUser(t, *flagTestUser)
	name := newName()
	apiPort := freePort(t, "tcp")
	for _, tc := range []struct {
		after time.Duration
		how   string
	}{
		{300 * time.Millisecond, "stop"},
		{1500 * time.Millisecond, "stop"},
		{3 * time.Second, "stop"},
		{5 * time.Second, "stop"},
		{2 * time.Second, "ctrl-c"},
		{4 * time.Second, "ctrl-c"},
	} {
		t.Run(fmt.Sprintf("%s after %s", tc.how, tc.after), func(t *testing.T) {
			out := &syncBuffer{}
			cmd := u.command(work.unetes, "run", "--name", name, "--api-port", strconv.Itoa(apiPort))
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			time.Sleep(tc.after)
			asked := time.Now()
			if tc.how == "stop" {
				u.unetes(t, "", "stop", "--name", name)
			} else {
				cmd.Process.Signal(syscall.SIGINT)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("run ended with %v after a stop during start-up:\n%s", err, out.String())
				}
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("run did not end within 30 s of the stop:\n%s", out.String())
			}
			t.Logf("ended %.1f s after the stop", time.Since(asked).Seconds())
			if s := out.String(); !strings.Contains(s, fmt.Sprintf("instance %q stopped during start-up", name)) &&
				!(strings.Contains(s, "ready in") && strings.Contains(s, fmt.Sprintf("instance %q stopped", name))) {
				t.Fatalf("run does not say it stopped:\n%s", s)
			}
			waitFor(t, 10*time.Second, "no process of the instance", func() bool {
				return len(procsOf(u.uid, name)) == 0
			})
		})
	}
	// The next run starts cleanly.
	in := launch(t, u, name, []string{"--api-port", strconv.Itoa(apiPort)})
	in.mustKubectl("get", "nodes")
	if _, err := os.Stat(in.stateDir()); err != nil {
		t.Fatal(err)
	}
}
