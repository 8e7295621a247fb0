package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMultinodeScript runs testing/multinode.sh, the check for real hosts,
// on three made-up hosts (hostnet): its "ssh" enters a host's network
// namespace, gives it a host name of its own and runs the command as the
// test user with that host's home, as ssh to separate machines would. The
// script has to pass (a server and two nodes; every pod reaches every
// other and the Service by name) and leave nothing behind; bad usage and an
// unreachable host are refused with exit 2 and 1.
func TestMultinodeScript(t *testing.T) {
	const hosts = 3
	hn := newHostNet(t, hosts)
	u := asUser(t, *flagTestUser)
	homes := filepath.Join(work.dir, "multinode-homes")
	if err := os.MkdirAll(homes, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(homes) })
	for _, ns := range hn.Hosts {
		for _, d := range []string{ns, ns + "/run"} {
			p := filepath.Join(homes, d)
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(p, u.uid, u.gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	ssh := filepath.Join(homes, "ssh")
	wrapper := fmt.Sprintf(`#!/bin/sh
# ssh for testing/multinode.sh: DEST is a host's network namespace.
ns=$1; shift
[ -e /run/netns/"$ns" ] || { echo "ssh: Could not resolve hostname $ns" >&2; exit 255; }
exec nsenter --net=/run/netns/"$ns" -- unshare --uts -- sh -c 'hostname "$1" && exec setpriv --reuid=%d --regid=%d --clear-groups -- env -i HOME="$2" XDG_RUNTIME_DIR="$2/run" USER=%s LANG=C PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin sh -c "$3"' - "$ns" %s/"$ns" "$*"
`, u.uid, u.gid, u.name, homes)
	if err := os.WriteFile(ssh, []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	script := func(limit time.Duration, args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command("./multinode.sh", args...)
		cmd.Env = append(os.Environ(), "SSH="+ssh, "UNETES="+work.unetes)
		out, errOut, code := runFor(t, cmd, limit)
		return out + errOut, code
	}

	if out, code := script(time.Minute, hn.Hosts[0]); code != 2 || !strings.Contains(out, "give the server and at least one node") {
		t.Fatalf("one host: exit %d:\n%s", code, out)
	}
	if out, code := script(time.Minute, hn.Hosts[0], "no-such-host"); code != 1 || !strings.Contains(out, "cannot run a command on no-such-host") {
		t.Fatalf("an unreachable host: exit %d:\n%s", code, out)
	}

	out, code := script(12*time.Minute, hn.Hosts...)
	t.Logf("multinode.sh:\n%s", out)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("PASS: %d hosts", hosts)) {
		t.Fatalf("multinode.sh: exit %d", code)
	}
	// Every pod fetched every other pod, and the Service from the nodes.
	if n, want := strings.Count(out, "\nok    "), hosts*(hosts-1)+hosts-1; n != want {
		t.Fatalf("multinode.sh passed %d checks, want %d", n, want)
	}
	for i, ns := range hn.Hosts {
		if i > 0 && !strings.Contains(out, ns+" joined as node "+ns) {
			t.Fatalf("host %s did not join under its host name", ns)
		}
		data := filepath.Join(homes, ns, ".local/share/unetes/multinode")
		if _, err := os.Stat(data); !os.IsNotExist(err) {
			t.Fatalf("multinode.sh left %s (%v)", data, err)
		}
	}
	// The instances' processes name it (--name, state dirs); the pods'
	// are shims, pause and the web servers.
	if left := append(append(procsOf(u.uid, "multinode"), containerProcs(u.uid)...), procsOf(u.uid, "httpd -f -p 80")...); len(left) > 0 {
		t.Fatalf("multinode.sh left processes running:\n%s", describe(left))
	}
}
