package pagecache

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

type recorder struct {
	bytes.Buffer
	sizes []int
}

func (r *recorder) Write(b []byte) (int, error) {
	r.sizes = append(r.sizes, len(b))
	return r.Buffer.Write(b)
}

func TestNewWriterWritesBasePages(t *testing.T) {
	data := bytes.Repeat([]byte("unetes!"), 3*WriteSize/7+100)
	var r recorder
	n, err := NewWriter(&r).Write(data)
	if err != nil || n != len(data) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(data))
	}
	if !bytes.Equal(r.Bytes(), data) {
		t.Fatal("the bytes written differ from the bytes given")
	}
	for _, s := range r.sizes {
		if s > WriteSize {
			t.Fatalf("a write of %d bytes reached the file (sizes %v); want <= %d", s, r.sizes, WriteSize)
		}
	}
	if len(r.sizes) != (len(data)+WriteSize-1)/WriteSize {
		t.Fatalf("%d writes for %d bytes: %v", len(r.sizes), len(data), r.sizes)
	}
}

// resident is how many pages of the file at path are in the page cache.
func resident(t *testing.T, path string) (in, all int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec, err := residency(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vec {
		in += int(v & 1)
	}
	return in, len(vec)
}

func TestRefillCachesEvictedPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prog")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewWriter(f).Write(bytes.Repeat([]byte{0xcc}, 4<<20+123)); err != nil {
		t.Fatal(err)
	}
	// Written back, then dropped from the page cache.
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if in, all := resident(t, path); in == all {
		t.Skipf("this file system kept all %d pages cached after FADV_DONTNEED (tmpfs?)", all)
	}
	Refill(path)
	if in, all := resident(t, path); in != all {
		t.Fatalf("after Refill %d of %d pages are cached; want all", in, all)
	}
}
