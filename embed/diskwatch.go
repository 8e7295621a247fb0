package embed

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Disk is the disk watch, as `unetes status` names it: it says, before the
// kubelet acts, that the disk of the data dir (the kubelet's and
// containerd's files, volumes, docker's data) is filling up.
const Disk = "disk"

// DiskFree is the free space below which the kubelet evicts pods (its
// nodefs.available and imagefs.available: one disk here): a percentage of
// the disk or a size. Between it and 1.5 times it, the kubelet deletes
// unused images first and unetes warns.
type DiskFree struct {
	Percent float64 // 0 < Percent < 100, or 0 when Bytes is set
	Bytes   int64
	text    string
}

// DefaultDiskFree is the kubelet's own default for nodefs.available.
var DefaultDiskFree = DiskFree{Percent: 10, text: "10%"}

// ParseDiskFree reads "10%" or a size such as "5Gi" or "500M".
func ParseDiskFree(s string) (DiskFree, error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v <= 0 || v >= 100 {
			return DiskFree{}, fmt.Errorf("%q is not a percentage between 0 and 100 (say 10%%, or a size: 5Gi)", s)
		}
		return DiskFree{Percent: v, text: s}, nil
	}
	q, err := resource.ParseQuantity(s)
	if err != nil || q.Sign() <= 0 {
		return DiskFree{}, fmt.Errorf("%q is neither a percentage (10%%) nor a size (5Gi, 500M)", s)
	}
	return DiskFree{Bytes: q.Value(), text: s}, nil
}

func (d DiskFree) String() string { return d.text }

// bytes is the threshold on a disk of total bytes.
func (d DiskFree) bytes(total uint64) float64 {
	if d.Bytes > 0 {
		return float64(d.Bytes)
	}
	return float64(total) * d.Percent / 100
}

// imageGC is the kubelet's image GC thresholds (percent of the disk used)
// for a percentage: GC from 1.5 times the eviction threshold's free space,
// as the kubelet's defaults are (85/80 for 10%); none (the defaults) for a
// size or where that leaves too little.
func (d DiskFree) imageGC() (high, low int, ok bool) {
	high = int(100 - 1.5*d.Percent)
	if d.Percent == 0 || high < 10 {
		return 0, 0, false
	}
	return high, high - 5, true
}

// diskState is pure: the disk's state given its free and total bytes,
// and what `unetes status` and the node's Events say of it.
func diskState(free, total uint64, min DiskFree) (state, note string) {
	have := fmt.Sprintf("%.0f%% free (%s of %s)", 100*float64(free)/float64(max(total, 1)), gib(free), gib(total))
	limit := min.bytes(total)
	switch {
	case float64(free) < limit:
		return "pressure", have + ", below the eviction threshold " + min.String() +
			": the kubelet deletes unused images, evicts pods and starts no new ones; free space on the data dir's disk, or start with a lower --eviction-disk-free"
	case float64(free) < 1.5*limit:
		return "low", have + ", near the eviction threshold " + min.String() +
			": the kubelet deletes unused images and, below " + min.String() + ", evicts pods; free space on the data dir's disk, or start with a lower --eviction-disk-free"
	}
	return "ok", have + "; pods are evicted below " + min.String() + " (--eviction-disk-free)"
}

func gib(b uint64) string { return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30)) }

// diskWatchPeriod is how often the disk is looked at (the kubelet's
// eviction manager looks every 10 s).
const diskWatchPeriod = 10 * time.Second

// watchDisk reports the data dir's disk in the status every period and,
// when it gets low or under pressure (or well again), says so in an Event
// on the node. It returns when ctx ends.
func (cp *ControlPlane) watchDisk(ctx context.Context, node *nodeClient) error {
	prev := "ok"
	for {
		var st unix.Statfs_t
		if err := unix.Statfs(cp.cfg.DataDir, &st); err == nil {
			state, note := diskState(st.Bavail*uint64(st.Bsize), st.Blocks*uint64(st.Bsize), cp.node.DiskFree)
			cp.setStatus(ComponentStatus{Name: Disk, State: state, Since: time.Now(), Note: note})
			if state != prev {
				cp.diskEvent(ctx, node, state, note)
				prev = state
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(diskWatchPeriod):
		}
	}
}

// diskEvent records a change of the disk's state on the node, as the
// kubelet records its own node events (involvedObject UID = node name).
func (cp *ControlPlane) diskEvent(ctx context.Context, node *nodeClient, state, note string) {
	typ, reason := corev1.EventTypeWarning, "DiskSpaceLow"
	switch state {
	case "pressure":
		reason = "DiskSpaceBelowEvictionThreshold"
	case "ok":
		typ, reason = corev1.EventTypeNormal, "DiskSpaceOK"
	}
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: node.name + ".", Namespace: metav1.NamespaceDefault},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: node.name, UID: types.UID(node.name)},
		Reason:         reason, Message: "the data dir's disk has " + note, Type: typ,
		Source:         corev1.EventSource{Component: "unetes", Host: node.name},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
	if _, err := node.c.CoreV1().Events(metav1.NamespaceDefault).Create(ctx, ev, metav1.CreateOptions{}); err != nil && cp.cfg.Log != nil {
		cp.cfg.Log.Warn("record the disk's state in an event", "state", state, "err", err)
	}
}
