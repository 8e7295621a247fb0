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
// -> all of them running again (a container started by this run). Then the
// same restart with few pods: the Deployment scaled down to few.
func (b *bench) podRows(bin, inst string, port, n, few int, before memory) []podRow {
	pods, err := b.podLister(inst)
	if err != nil {
		return []podRow{{fmt.Sprintf("%d pods", n), err.Error(), ""}}
	}
	apply := func(replicas int) error {
		cmd := b.asUser(exec.Command(bin, "kubectl", "--name", inst, "apply", "-f", "-"))
		cmd.Stdin = strings.NewReader(workload.Sleepers("many", replicas, "localhost/busybox:bench"))
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apply: %v: %s", err, out)
		}
		return nil
	}
	// wait returns how long until exactly want pods of the Deployment run,
	// each in a container started since then.
	wait := func(since time.Time, want int) string {
		for time.Since(since) < 5*time.Minute {
			ps, _ := pods.pods("app=many", "")
			k := 0
			for _, p := range ps {
				if p.Phase == "Running" && !p.Started.Before(since.Truncate(time.Second)) {
					k++
				}
			}
			if k == want && len(ps) == want {
				return fmt.Sprintf("%.1f s", time.Since(since).Seconds())
			}
			time.Sleep(200 * time.Millisecond)
		}
		return fmt.Sprintf("not %d Running after 5 minutes", want)
	}
	restart := func(replicas int) []podRow {
		start := time.Now()
		rt := b.timeToReady(bin, inst, port, true, "--disable", "docker")
		return []podRow{
			{fmt.Sprintf("run -> ready, warm, with %d pods", replicas+1), secs(rt.node, rt.err), "<= cold, empty"},
			{fmt.Sprintf("run -> %d pods Running again, warm", replicas), wait(start, replicas), "ready + a few s"},
		}
	}
	start := time.Now()
	if err := apply(n); err != nil {
		return []podRow{{fmt.Sprintf("%d pods", n), err.Error(), ""}}
	}
	rows := []podRow{{fmt.Sprintf("apply -> %d more pods Running", n), wait(start.Add(-time.Second), n), ""}}
	after := instanceMemory(inst)
	rows = append(rows, podRow{fmt.Sprintf("memory per extra pod, PSS (%d pods)", n),
		fmt.Sprintf("%.1f MB", (after.pss-before.pss)/float64(n)), "<= 10 MB"})
	if sh, ok := after.byRole["shims"]; ok {
		rows = append(rows, podRow{"  of which containerd's shim, PSS", fmt.Sprintf("%.1f MB", sh[1]/float64(n+1)), ""})
	}
	rows = append(rows, restart(n)...)
	// Scaled down, the Deployment keeps few pods; wait until the others
	// are gone before restarting with few.
	if err := apply(few); err != nil {
		return append(rows, podRow{fmt.Sprintf("%d pods", few), err.Error(), ""})
	}
	for t := time.Now(); time.Since(t) < 2*time.Minute; time.Sleep(200 * time.Millisecond) {
		if ps, _ := pods.pods("app=many", ""); len(ps) == few {
			break
		}
	}
	return append(rows, restart(few)...)
}
