package embed

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSums(t *testing.T) {
	var good strings.Builder
	for _, n := range helperNames {
		good.WriteString(strings.Repeat("ab", 32) + "  " + n + "\n")
	}
	sums, err := parseSums([]byte(good.String()))
	if err != nil || len(sums) != len(helperNames) || sums["runc"] != strings.Repeat("ab", 32) {
		t.Fatalf("parseSums(good) = %v, %v", sums, err)
	}
	for name, in := range map[string]string{
		"missing helper": strings.Replace(good.String(), "  pause\n", "  other\n", 1),
		"short digest":   strings.Replace(good.String(), strings.Repeat("ab", 32)+"  runc\n", "abab  runc\n", 1),
		"not hex":        strings.Replace(good.String(), strings.Repeat("ab", 32)+"  runc\n", strings.Repeat("zz", 32)+"  runc\n", 1),
		"empty":          "",
	} {
		if _, err := parseSums([]byte(in)); !errors.Is(err, ErrNoHelpers) {
			t.Errorf("%s: err = %v, want ErrNoHelpers", name, err)
		}
	}
}

// TestInstallHelpers unpacks the embedded helpers (built by `make`), then
// repairs a truncated one and a missing one, and removes an older build's dir.
func TestInstallHelpers(t *testing.T) {
	if _, err := payloadFS.ReadFile(helpersSums); err != nil {
		t.Fatal("no embedded helpers: run `make helpers` first (`make unit` does)")
	}
	data := t.TempDir()
	old := filepath.Join(data, "bin", "0123456789abcdef")
	if err := os.MkdirAll(old, 0o700); err != nil {
		t.Fatal(err)
	}
	dir, err := InstallHelpers(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("old helper dir still there: %v", err)
	}
	sums, _, _ := embeddedSums()
	check := func() {
		t.Helper()
		for _, n := range helperNames {
			p := filepath.Join(dir, n)
			got, err := fileSum(p)
			if err != nil || got != sums[n] {
				t.Errorf("%s: sum %s, %v; want %s", n, got, err, sums[n])
			}
			if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o100 == 0 {
				t.Errorf("%s is not executable: %v", n, fi.Mode())
			}
		}
	}
	check()
	if err := os.Truncate(filepath.Join(dir, "runc"), 100); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "pause")); err != nil {
		t.Fatal(err)
	}
	if again, err := InstallHelpers(data); err != nil || again != dir {
		t.Fatalf("second install: %s, %v (first %s)", again, err, dir)
	}
	check()
	// Same size, other bytes: the record of the last check no longer
	// matches (mtime), so the digest is checked and the helper repaired.
	p := filepath.Join(dir, "bridge")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := InstallHelpers(data); err != nil {
		t.Fatal(err)
	}
	check()
}
