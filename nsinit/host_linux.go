package nsinit

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

// LiveHost reads the real machine.
type LiveHost struct{}

var _ Host = LiveHost{}

func (LiveHost) ReadFile(p string) ([]byte, error)  { return os.ReadFile(p) }
func (LiveHost) Stat(p string) (fs.FileInfo, error) { return os.Stat(p) }
func (LiveHost) HasFileCaps(p string) bool {
	sz, err := unix.Getxattr(p, "security.capability", nil)
	return err == nil && sz > 0
}

// SbinDirs hold the administration tools (ip, iptables, nft, newuidmap)
// that an ordinary user's PATH often lacks.
var SbinDirs = []string{"/usr/local/sbin", "/usr/sbin", "/sbin"}

// LookPath also searches the sbin directories, which an ordinary user's PATH
// often lacks.
func (LiveHost) LookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range slices.Concat(SbinDirs, []string{"/usr/bin", "/bin"}) {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

func (LiveHost) OpenRW(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

func ownerUID(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
