package main

import (
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/unetes/unetes/testing/internal/workload"
)

type podRow struct{ name, value, target string }

// podRows measures n more pods in the running instance inst (it has one,
// from firstPod): the time from apply until all run, the memory each adds
// (PSS, whole instance), and a warm restart with them: run -> ready, and
// -> all of them running again (a container started by this run).
func (b *bench) podRows(bin, inst string, port, n int, before memory) []podRow {
	kubectl := func(args ...string) (string, error) {
		out, err := b.asUser(exec.Command(bin, append([]string{"kubectl", "--name", inst}, args...)...)).CombinedOutput()
		return string(out), err
	}
	apply := b.asUser(exec.Command(bin, "kubectl", "--name", inst, "apply", "-f", "-"))
	apply.Stdin = strings.NewReader(workload.Sleepers("many", n, "localhost/busybox:bench"))
	start := time.Now()
	if out, err := apply.CombinedOutput(); err != nil {
		return []podRow{{fmt.Sprintf("%d pods", n), fmt.Sprintf("apply: %v: %s", err, out), ""}}
	}
	running := func(since time.Time) int {
		out, _ := kubectl("get", "pods", "-l", "app=many", "-o",
			`jsonpath={range .items[*]}{.status.phase} {.status.containerStatuses[0].state.running.startedAt}{"\n"}{end}`)
		k := 0
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(l)
			if len(f) == 2 && f[0] == "Running" {
				if at, err := time.Parse(time.RFC3339, f[1]); err == nil && !at.Before(since.Truncate(time.Second)) {
					k++
				}
			}
		}
		return k
	}
	wait := func(since time.Time) string {
		for time.Since(since) < 5*time.Minute {
			if running(since) == n {
				return fmt.Sprintf("%.1f s", time.Since(since).Seconds())
			}
			time.Sleep(200 * time.Millisecond)
		}
		return "not all Running after 5 minutes"
	}
	rows := []podRow{{fmt.Sprintf("apply -> %d more pods Running", n), wait(start.Add(-time.Second)), ""}}
	after := instanceMemory(inst)
	rows = append(rows, podRow{fmt.Sprintf("memory per extra pod, PSS (%d pods)", n),
		fmt.Sprintf("%.1f MB", (after.pss-before.pss)/float64(n)), "<= 10 MB"})
	if sh, ok := after.byRole["shims"]; ok {
		rows = append(rows, podRow{"  of which containerd's shim, PSS", fmt.Sprintf("%.1f MB", sh[1]/float64(n+1)), ""})
	}
	restart := time.Now()
	rt := b.timeToReady(bin, inst, port, true)
	rows = append(rows,
		podRow{fmt.Sprintf("run -> ready, warm, with %d pods", n+1), secs(rt.node, rt.err), "<= cold, empty"},
		podRow{fmt.Sprintf("run -> %d pods Running again, warm", n), wait(restart), "ready + a few s"})
	return rows
}
