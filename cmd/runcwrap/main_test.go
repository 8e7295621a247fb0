package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestRuncCommand(t *testing.T) {
	for _, tc := range []struct {
		args        []string
		cmd, bundle string
	}{
		{[]string{"--root", "/run/runc", "--log", "/x/log.json", "--log-format", "json", "create", "--bundle", "/b", "--pid-file", "/b/pid", "id1"}, "create", "/b"},
		{[]string{"run", "--bundle=/c", "id"}, "run", "/c"},
		{[]string{"run", "id"}, "run", "."},
		{[]string{"--root", "/r", "update", "--resources", "-", "id"}, "update", "."},
		{[]string{"--root", "/r", "state", "id"}, "state", "."},
		{[]string{"--debug"}, "", ""},
	} {
		cmd, bundle := runcCommand(tc.args)
		if cmd != tc.cmd || (tc.cmd == "create" || tc.cmd == "run") && bundle != tc.bundle {
			t.Errorf("runcCommand(%v) = %q %q, want %q %q", tc.args, cmd, bundle, tc.cmd, tc.bundle)
		}
	}
}

func TestDropLimitsKeepsDevicesAndTheRest(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	in := `{"ociVersion":"1.2.0","process":{"args":["sh"]},"linux":{"cgroupsPath":"/k8s.io/x","namespaces":[{"type":"pid"}],
"resources":{"devices":[{"allow":false,"access":"rwm"}],"memory":{"limit":67108864},"cpu":{"shares":204,"quota":20000,"period":100000}}}}`
	os.WriteFile(p, []byte(in), 0o600)
	if err := dropLimits(p); err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Process map[string]any `json:"process"`
		Linux   map[string]any `json:"linux"`
	}
	b, _ := os.ReadFile(p)
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	res := spec.Linux["resources"].(map[string]any)
	if _, ok := res["devices"]; !ok || len(res) != 1 {
		t.Fatalf("resources = %v, want the device rules only", res)
	}
	if _, ok := spec.Linux["cgroupsPath"]; ok || spec.Linux["namespaces"] == nil || spec.Process == nil {
		t.Fatalf("spec = %s", b)
	}
	if err := dropLimits(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("a missing bundle must be an error")
	}
}
