package nsinit

import (
	"os"
	"path/filepath"
	"testing"
)

// On a plain directory standing in for cgroupfs, DelegateCgroup must move
// the listed pids into the leaf and enable the delegated controllers.
func TestDelegateCgroupWrites(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "user.slice/app.scope")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte("42\n"), 0o644)
	m := CgroupMode{V2: true, Delegated: true, Path: "/user.slice/app.scope", Controllers: []string{"cpuset", "cpu", "io", "memory", "pids", "hugetlb"}}
	if err := DelegateCgroup(root, m); err != nil {
		t.Fatalf("DelegateCgroup: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, CgroupInit, "cgroup.procs")); string(b) != "42" {
		t.Fatalf("leaf cgroup.procs = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control")); string(b) != "+cpuset +cpu +io +memory +pids" {
		t.Fatalf("subtree_control = %q", b)
	}
	if err := DelegateCgroup(root, CgroupMode{V2: true, Path: "/x"}); err == nil {
		t.Fatal("an undelegated cgroup must be refused")
	}
}
