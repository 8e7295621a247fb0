// Package pagecache keeps the page cache of unetes' own executables (the
// program and its helpers) in base pages.
//
// A process that touches one page of a file mapping maps the whole folio
// that holds it, and its proportional set size counts every page mapped.
// How big a file's folios are is decided when the file enters the page
// cache: a write makes folios as large as the write (64 KiB writes made
// 64 KiB folios), readahead makes large ones too, and only 4 KiB writes or
// reads with readahead off make base pages. The same instance, idle, took
// ~431 MB PSS with its program in 64 KiB folios and ~374 MB in base pages
// (the sandbox 304 -> 278, the kubelet 63 -> 44, `unetes run` 28 -> 18):
// the processes map only the pages they use, plus the kernel's fault-around
// of cached neighbours.
package pagecache

import (
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// WriteSize is the size of the writes that make a file: one base page, so
// that the file enters the page cache as base pages. 4 KiB writes of the
// 220 MB program cost ~0.3 s more than 1 MiB ones.
const WriteSize = 4 << 10

// NewWriter returns a writer that passes each write on to w in pieces of at
// most WriteSize. (A bufio.Writer does not: it hands a write larger than
// its buffer to w whole.)
func NewWriter(w io.Writer) io.Writer { return pieceWriter{w} }

type pieceWriter struct{ w io.Writer }

func (p pieceWriter) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		k, err := p.w.Write(b[:min(len(b), WriteSize)])
		n += k
		if err != nil {
			return n, err
		}
		b = b[k:]
	}
	return n, nil
}

// Refill reads into the page cache, with readahead off, the pages of the
// file at path that are not cached (dropped under memory pressure, or since
// a reboot), so that the next executions map them from base pages rather
// than from the large folios their faults' readahead would make. Cached
// pages are left as they are. Best effort: any error leaves the file to
// the kernel's defaults.
func Refill(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return
	}
	size := int(fi.Size())
	m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return
	}
	defer unix.Munmap(m)
	page := os.Getpagesize()
	vec, err := residency(m)
	if err != nil {
		return
	}
	if unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM) != nil {
		return
	}
	buf := make([]byte, 1<<20)
	for i := 0; i < len(vec); {
		if vec[i]&1 != 0 {
			i++
			continue
		}
		j := i
		for j < len(vec) && vec[j]&1 == 0 && (j-i)*page < len(buf) {
			j++
		}
		if _, err := f.ReadAt(buf[:(j-i)*page], int64(i*page)); err != nil && err != io.EOF {
			return
		}
		i = j
	}
}

// residency is mincore(2) of mapping m: a byte per page, bit 0 set where
// the page is in the page cache.
func residency(m []byte) ([]byte, error) {
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		return nil, e
	}
	return vec, nil
}
