package embed

import (
	"strings"
	"testing"
)

func TestParseDiskFree(t *testing.T) {
	for _, tc := range []struct {
		in      string
		percent float64
		bytes   int64
		err     string
	}{
		{in: "10%", percent: 10},
		{in: " 2.5% ", percent: 2.5},
		{in: "5Gi", bytes: 5 << 30},
		{in: "500M", bytes: 500e6},
		{in: "0%", err: "not a percentage between 0 and 100"},
		{in: "120%", err: "not a percentage between 0 and 100"},
		{in: "-1Gi", err: "neither a percentage"},
		{in: "lots", err: "neither a percentage"},
	} {
		d, err := ParseDiskFree(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || d.Percent != tc.percent || d.Bytes != tc.bytes || d.String() != strings.TrimSpace(tc.in) {
			t.Errorf("%q: %+v %v", tc.in, d, err)
		}
	}
}

func TestDiskState(t *testing.T) {
	const gi = 1 << 30
	pct, _ := ParseDiskFree("10%")
	size, _ := ParseDiskFree("5Gi")
	for _, tc := range []struct {
		name        string
		free, total uint64
		min         DiskFree
		want        string
	}{
		{"plenty", 50 * gi, 100 * gi, pct, "ok"},
		{"just above 1.5x", 16 * gi, 100 * gi, pct, "ok"},
		{"between the threshold and 1.5x: warned", 14 * gi, 100 * gi, pct, "low"},
		{"below: the kubelet evicts", 9 * gi, 100 * gi, pct, "pressure"},
		{"a size: low", 7 * gi, 1000 * gi, size, "low"},
		{"a size: pressure", 4 * gi, 1000 * gi, size, "pressure"},
	} {
		state, note := diskState(tc.free, tc.total, tc.min)
		if state != tc.want || !strings.Contains(note, tc.min.String()) {
			t.Errorf("%s: %s (%s), want %s", tc.name, state, note, tc.want)
		}
		if state != "ok" && !strings.Contains(note, "--eviction-disk-free") {
			t.Errorf("%s: the note names no fix: %s", tc.name, note)
		}
	}
}

func TestImageGCFollowsTheThreshold(t *testing.T) {
	if h, l, ok := DefaultDiskFree.imageGC(); !ok || h != 85 || l != 80 {
		t.Fatalf("10%%: %d/%d %v, want the kubelet's defaults 85/80", h, l, ok)
	}
	size, _ := ParseDiskFree("5Gi")
	if _, _, ok := size.imageGC(); ok {
		t.Fatal("a size sets image GC thresholds")
	}
	big, _ := ParseDiskFree("70%")
	if _, _, ok := big.imageGC(); ok {
		t.Fatal("70% leaves image GC below 10% used")
	}
}
