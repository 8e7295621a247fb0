package e2e

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unetes/unetes/testing/internal/hostaddr"
	"github.com/unetes/unetes/testing/internal/hostnet"
	"github.com/unetes/unetes/testing/internal/syncbuf"
)

var (
	flagBin         = flag.String("unetes-bin", "", "path to the unetes binary under test (make e2e sets it)")
	flagTestUser    = flag.String("test-user", "unetes-test", "unprivileged user with sub-IDs that runs unetes when the tests run as root")
	flagNoSubIDUser = flag.String("nosubid-user", "unetes-nosubid", "unprivileged user without sub-IDs")
	flagNettool     = flag.String("nettool", "", "a built ./testing/nettool, where the suite runs without Go (the cgroup v2 guest); built when empty")
)

// work is a directory every test user can read: the binaries live there.
var work struct {
	dir     string
	unetes  string
	nettool string
}

func TestMain(m *testing.M) {
	flag.Parse()
	code, err := setup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		os.Exit(1)
	}
	if code == 0 {
		code = m.Run()
	}
	os.RemoveAll(work.dir)
	os.Exit(code)
}

func setup() (int, error) {
	if *flagBin == "" {
		return 1, fmt.Errorf("-unetes-bin is required: run `make e2e`")
	}
	d, err := os.MkdirTemp("", "unetes-e2e-")
	if err != nil {
		return 1, err
	}
	work.dir = d
	if err := os.Chmod(d, 0o755); err != nil {
		return 1, err
	}
	work.unetes = filepath.Join(d, "unetes")
	if err := copyFile(*flagBin, work.unetes); err != nil {
		return 1, fmt.Errorf("copy unetes: %w", err)
	}
	work.nettool = filepath.Join(d, "nettool")
	if *flagNettool != "" {
		if err := copyFile(*flagNettool, work.nettool); err != nil {
			return 1, fmt.Errorf("copy nettool: %w", err)
		}
		return 0, nil
	}
	out, err := exec.Command("go", "build", "-o", work.nettool, "./nettool").CombinedOutput()
	if err != nil {
		return 1, fmt.Errorf("build nettool: %v: %s", err, out)
	}
	return 0, nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

// testUser is who runs unetes in a test.
type testUser struct {
	name     string
	uid, gid int
	home     string // a fresh HOME, owned by the user
	netns    string // when set, commands run in this network namespace (hostNet)
}

// asUser returns the user a test runs unetes as: the -test-user when the
// suite runs as root, otherwise the current (already unprivileged) user.
func asUser(t *testing.T, name string) *testUser {
	t.Helper()
	if os.Getuid() != 0 {
		u, _ := user.Current()
		name = u.Username
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("look up test user %q: %v (run `sudo make setup`)", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	home, err := os.MkdirTemp(work.dir, "home-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(home, 0o700)
	if err := os.Chown(home, uid, gid); err != nil && os.Getuid() == 0 {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	return &testUser{name: name, uid: uid, gid: gid, home: home}
}

// rootUser runs unetes as root itself.
func rootUser(t *testing.T) *testUser {
	if os.Getuid() != 0 {
		t.Fatal("this test needs the suite to run as root (make test runs it so)")
	}
	home := t.TempDir()
	return &testUser{name: "root", uid: 0, gid: 0, home: home}
}

// command builds an exec.Cmd that runs as u with a clean environment.
func (u *testUser) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	if u.netns != "" {
		cmd = hostnet.Command(u.netns, u.uid, u.gid, name, args...)
	}
	cmd.Env = []string{
		"HOME=" + u.home,
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"USER=" + u.name,
		"LANG=C",
	}
	cmd.Dir = u.home
	if os.Getuid() == 0 && u.uid != 0 && u.netns == "" {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid), Groups: []uint32{}}}
	}
	return cmd
}

// unetes runs one short unetes command and returns its output and exit status.
func (u *testUser) unetes(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := u.command(work.unetes, args...)
	cmd.Stdin = strings.NewReader(stdin)
	return runFor(t, cmd, 2*time.Minute)
}

// runFor runs cmd to its end, killing it and failing the test after limit,
// and returns its output and exit status.
func runFor(t *testing.T, cmd *exec.Cmd, limit time.Duration) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v did not finish in %s; stdout=%q stderr=%q", cmd.Args, limit, o.String(), e.String())
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

// syncBuffer collects a running process's output.
type syncBuffer = syncbuf.Buffer

var _ io.Writer = (*syncBuffer)(nil)

// hostIP is this host's own non-loopback IPv4 address.
func hostIP(t *testing.T) net.IP {
	t.Helper()
	ip, err := hostaddr.IPv4()
	if err != nil {
		t.Fatal(err)
	}
	return ip
}
