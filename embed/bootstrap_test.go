package embed

import (
	"os"
	"path/filepath"
	"testing"
)

func TestBootstrapped(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, bootstrapFile)
	db := filepath.Join(dir, "etcd", "member", "snap", "db")
	if bootstrapped(dir) {
		t.Fatal("bootstrapped with nothing in the data dir")
	}
	if err := markBootstrapped(dir); err != nil {
		t.Fatal(err)
	}
	if bootstrapped(dir) {
		t.Fatal("bootstrapped without etcd data (moved away after the run that wrote the marker)")
	}
	if err := os.MkdirAll(filepath.Dir(db), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if !bootstrapped(dir) {
		t.Fatal("not bootstrapped with the marker of this version and etcd data")
	}
	if err := writeFileAtomic(marker, []byte("v1.0.0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if bootstrapped(dir) {
		t.Fatal("bootstrapped by another Kubernetes version, whose bootstrap roles may differ")
	}
	st, err := os.Stat(marker)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("marker mode %v, %v; want 0600", st.Mode(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}
