package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"text/tabwriter"
	"time"
)

// sizeTable: what a user downloads (the launcher with the program
// compressed inside), what it unpacks once into the cache, how long that
// first run takes, and what a later run costs. It also leaves the bench
// user's cache filled, so no other table times an unpack.
func (b *bench) sizeTable() {
	fmt.Printf("\nThe download, its first run and later runs (`unetes version`), same run\n\n")
	bin := b.home + "/unetes"
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "figure\tunetes\ttarget\tbefore (ab8d9f7: one 219 MB binary, nothing to unpack)")
	if fi, err := os.Stat(bin); err == nil {
		fmt.Fprintf(w, "download (bin/unetes)\t%.0f MB\t<= 150 MB\t219 MB\n", float64(fi.Size())/1e6)
	}
	var first, later []float64
	for i := range *flagRuns {
		cache := filepath.Join(b.home, fmt.Sprintf("fresh-cache-%d", i))
		if d, err := b.timeVersion(bin, cache); err == nil {
			first = append(first, d)
		} else {
			fmt.Fprintf(w, "first run\tfailed: %v\t\t\n", err)
		}
		os.RemoveAll(cache)
	}
	b.timeVersion(bin, "") // fills the bench user's own cache
	for range 5 {
		if d, err := b.timeVersion(bin, ""); err == nil {
			later = append(later, d)
		}
	}
	if prog, err := filepath.Glob(filepath.Join(b.home, ".cache", "unetes", "bin", "*", "unetes")); err == nil && len(prog) == 1 {
		if fi, err := os.Stat(prog[0]); err == nil {
			fmt.Fprintf(w, "unpacked program (~/.cache/unetes/bin/<digest>/unetes)\t%.0f MB\t\t219 MB\n", float64(fi.Size())/1e6)
		}
	}
	fmt.Fprintf(w, "first run: unpack + `unetes version` (median of %d)\t%s\t<= 2 s\t-\n", len(first), medianSecs(first))
	fmt.Fprintf(w, "later run: `unetes version` (median of %d, no unpack)\t%s\t\t\n", len(later), medianSecs(later))
	w.Flush()
}

// timeVersion runs `unetes version` as the bench user, with XDG_CACHE_HOME
// at cache where it is not "", and returns its wall time in seconds.
func (b *bench) timeVersion(bin, cache string) (float64, error) {
	cmd := b.asUser(exec.Command(bin, "version"))
	if cache != "" {
		cmd.Env = append(cmd.Env, "XDG_CACHE_HOME="+cache)
	}
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("%v: %s", err, out)
	}
	return time.Since(start).Seconds(), nil
}

func medianSecs(xs []float64) string {
	if len(xs) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f s", median(xs))
}
