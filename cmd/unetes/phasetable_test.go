package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A sandbox log as slog writes it (lines cut short).
const childLogSample = `time=2026-12-07T01:50:05.863Z level=INFO msg="sandbox ready" role=sandbox exec=/tmp/unetes-1001/v1/exec.sock
time=2026-12-07T01:50:05.999Z level=INFO msg=phase role=sandbox phase=etcd took=126.949773ms
time=2026-12-07T01:50:05.999Z level=INFO msg="starting component" role=sandbox component=controlplane component=apiserver args="[--advertise-address=10.0.2.100 --x=\"y z\"]"
time=2026-12-07T01:50:09.102Z level=INFO msg=phase role=sandbox phase="apiserver ready" took=3.102319952s
time=2026-12-07T01:50:09.335Z level=INFO msg="add-on ready" role=sandbox component=addons addon=lb took=121.576299ms
time=2026-12-07T01:50:10.405Z level=INFO msg=phase role=sandbox phase=broken took=soon
`

func TestSandboxPhases(t *testing.T) {
	got := sandboxPhases(strings.NewReader(childLogSample))
	want := []string{"sandbox etcd 126.949773ms", "sandbox apiserver ready 3.102319952s", "add-on lb 121.576299ms"}
	if len(got) != len(want) {
		t.Fatalf("phases %+v", got)
	}
	for i, p := range got {
		if s := p.who + " " + p.what + " " + p.took.String(); s != want[i] {
			t.Errorf("phase %d: %q, want %q", i, s, want[i])
		}
	}
	if e := got[1].end.Format(time.RFC3339Nano); e != "2026-12-07T01:50:09.102Z" {
		t.Errorf("end %s", e)
	}
}

func TestPhaseTableInStartOrder(t *testing.T) {
	began := time.Date(2026, 12, 7, 1, 50, 5, 500e6, time.UTC)
	phases := append([]phase{{who: "run", what: "apiserver ready", end: began.Add(3700 * time.Millisecond), took: 1600 * time.Millisecond}},
		sandboxPhases(strings.NewReader(childLogSample))...)
	var b bytes.Buffer
	writePhaseTable(&b, began, phases)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	// Sorted by start: the sandbox's etcd (372 ms), its apiserver (500),
	// run's wait for it (2100), the lb add-on (3713).
	order := []string{`sandbox\s+etcd\s+372\s+499\s+127`, `sandbox\s+apiserver ready\s+500\s+3602\s+3102`, `run\s+apiserver ready\s+2100\s+3700\s+1600`, `add-on\s+lb\s+3713\s+3835\s+122`}
	if len(lines) != 2+len(order) {
		t.Fatalf("table:\n%s", b.String())
	}
	for i, re := range order {
		if !regexp.MustCompile(re).MatchString(lines[2+i]) {
			t.Errorf("row %d %q, want %s\n%s", i, lines[2+i], re, b.String())
		}
	}
}
