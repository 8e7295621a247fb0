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
	wait := func(since time.Time, want int) (time.Duration, error) {
		for time.Since(since) < 5*time.Minute {
			ps, _ := pods.pods("app=many", "")
			k := 0
			for _, p := range ps {
				if p.Phase == "Running" && !p.Started.Before(since.Truncate(time.Second)) {
					k++
				}
			}
			if k == want && len(ps) == want {
				return time.Since(since), nil
			}
			time.Sleep(200 * time.Millisecond)
		}
		return 0, fmt.Errorf("not %d Running after 5 minutes", want)
	}
	// restart times run from its start, after `unetes stop`: to ready, to
	// every pod running again, and the difference (the target).
	restart := func(replicas int, target string) []podRow {
		rt := b.timeToReady(bin, inst, port, true, "--disable", "docker")
		again, err := wait(rt.started, replicas)
		if err == nil {
			err = rt.err
		}
		return []podRow{
			{fmt.Sprintf("run -> ready, warm, with %d pods", replicas+1), secs(rt.node, rt.err), "<= cold, empty"},
			{fmt.Sprintf("run -> %d pods Running again, warm", replicas), secs(again, err), ""},
			{"  of which after ready", secs(again-rt.node, err), target},
		}
	}
	start := time.Now()
	if err := apply(n); err != nil {
		return []podRow{{fmt.Sprintf("%d pods", n), err.Error(), ""}}
	}
	took, err := wait(start.Add(-time.Second), n)
	rows := []podRow{{fmt.Sprintf("apply -> %d more pods Running", n), secs(took, err), ""}}
	after := instanceMemory(inst)
	rows = append(rows, podRow{fmt.Sprintf("memory per extra pod, PSS (%d pods)", n),
		fmt.Sprintf("%.1f MB", (after.pss-before.pss)/float64(n)), "<= 10 MB"})
	if sh, ok := after.byRole["shims"]; ok {
		rows = append(rows, podRow{"  of which containerd's shim, PSS", fmt.Sprintf("%.1f MB", sh[1]/float64(n+1)), ""})
	}
	rows = append(rows, restart(n, "<= 5 s")...)
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
	return append(rows, restart(few, "")...)
}
