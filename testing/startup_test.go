package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unetes/unetes/testing/internal/workload"
)

// TestStopDuringStartUp stops a Kubernetes instance at several moments of
// its start-up, with `unetes stop` and with Ctrl-C (SIGINT): each time run
// ends promptly with status 0, says so, and leaves no process; then the
// same instance starts cleanly. The first stop comes while the download
// is still unpacking the program (a first run, with a cache of its own):
// the stop waits for that run rather than finding no instance.
func TestStopDuringStartUp(t *testing.T) {
	u := asUser(t, *flagTestUser)
	name := newName()
	apiPort := freePort(t, "tcp")
	for _, tc := range []struct {
		after    time.Duration
		how      string
		firstRun bool // a new XDG_CACHE_HOME: the launcher unpacks
	}{
		{300 * time.Millisecond, "stop", true},
		{300 * time.Millisecond, "stop", false},
		{1500 * time.Millisecond, "stop", false},
		{3 * time.Second, "stop", false},
		{5 * time.Second, "stop", false},
		{2 * time.Second, "ctrl-c", false},
		{4 * time.Second, "ctrl-c", false},
	} {
		title := fmt.Sprintf("%s after %s", tc.how, tc.after)
		if tc.firstRun {
			title += " of a first run"
		}
		t.Run(title, func(t *testing.T) {
			var env []string
			if tc.firstRun {
				cache, err := os.MkdirTemp(work.dir, "cache-")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.RemoveAll(cache) })
				chownTree(t, cache, u)
				env = []string{"XDG_CACHE_HOME=" + cache}
			}
			out := &syncBuffer{}
			cmd := u.command(work.unetes, "run", "--name", name, "--api-port", strconv.Itoa(apiPort))
			cmd.Env = append(cmd.Env, env...)
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			time.Sleep(tc.after)
			asked := time.Now()
			if tc.how == "stop" {
				stop := u.command(work.unetes, "stop", "--name", name)
				stop.Env = append(stop.Env, env...)
				if stdout, stderr, code := runFor(t, stop, 2*time.Minute); code != 0 {
					t.Errorf("unetes stop: exit %d: %s%s", code, stdout, stderr)
				}
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
			if tc.firstRun && !strings.Contains(out.String(), "unpacked into") {
				t.Fatalf("the run did not unpack (no first run):\n%s", out.String())
			}
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

// TestThirtyPods: a 30-replica Deployment reaches Running on the one node,
// and stop/run brings all 30 back.
func TestThirtyPods(t *testing.T) {
	u := asUser(t, *flagTestUser)
	name := newName()
	in, apiPort := startKube(t, u, name)
	if _, errOut, code := in.apply(workload.Sleepers("many", 30, testImage)); code != 0 {
		t.Fatalf("apply: %s", errOut)
	}
	running := func(in *instance) func() bool {
		return func() bool {
			out, _, _ := in.kubectl("get", "pods", "-l", "app=many", "--field-selector=status.phase=Running", "-o", "name")
			return len(strings.Fields(out)) == 30
		}
	}
	start := time.Now()
	waitFor(t, 5*time.Minute, "30 pods Running", running(in))
	t.Logf("30 pods Running %.1f s after apply", time.Since(start).Seconds())
	in.stop()
	launched := time.Now().Truncate(time.Second)
	again := launch(t, u, name, []string{"--api-port", strconv.Itoa(apiPort)})
	start = time.Now()
	// Running in this run: the API shows the last run's status for a
	// while, so a pod counts once its container started after the launch.
	waitFor(t, 5*time.Minute, "30 pods Running again after stop/run", func() bool {
		out, _, _ := again.kubectl("get", "pods", "-l", "app=many", "-o",
			`jsonpath={range .items[*]}{.status.phase} {.status.containerStatuses[0].state.running.startedAt}{"\n"}{end}`)
		n := 0
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(l)
			if len(f) == 2 && f[0] == "Running" {
				if at, err := time.Parse(time.RFC3339, f[1]); err == nil && !at.Before(launched) {
					n++
				}
			}
		}
		return n == 30
	})
	t.Logf("30 pods Running again %.1f s after run was ready", time.Since(start).Seconds())
}
