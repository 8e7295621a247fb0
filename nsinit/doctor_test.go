package nsinit

import (
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

type fakeFile struct {
	mode fs.FileMode
	uid  int
}

func (f fakeFile) Name() string       { return "" }
func (f fakeFile) Size() int64        { return 0 }
func (f fakeFile) Mode() fs.FileMode  { return f.mode }
func (f fakeFile) ModTime() time.Time { return time.Time{} }
func (f fakeFile) IsDir() bool        { return f.mode.IsDir() }
func (f fakeFile) Sys() any           { return &syscall.Stat_t{Uid: uint32(f.uid)} }

// fakeHost is a healthy cgroup-v1 host unless a test changes it.
type fakeHost struct {
	files map[string]string
	stats map[string]fakeFile
	paths map[string]string
	caps  map[string]bool
	tun   error
}

func healthyHost() *fakeHost {
	return &fakeHost{
		files: map[string]string{
			"/proc/sys/user/max_user_namespaces": "63000\n",
			"/etc/subuid":                        "alice:100000:65536\n",
			"/etc/subgid":                        "alice:100000:65536\n",
			"/proc/sys/net/ipv4/ip_unprivileged_port_start": "1024\n",
			"/proc/self/mountinfo":                          "30 25 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro\n",
		},
		stats: map[string]fakeFile{"/usr/bin/newuidmap": {mode: 0o755 | fs.ModeSetuid}, "/usr/bin/newgidmap": {mode: 0o755 | fs.ModeSetuid}},
		paths: map[string]string{"newuidmap": "/usr/bin/newuidmap", "newgidmap": "/usr/bin/newgidmap", "ip": "/usr/sbin/ip", "nft": "/usr/sbin/nft"},
		caps:  map[string]bool{},
	}
}

func (h *fakeHost) ReadFile(p string) ([]byte, error) {
	if s, ok := h.files[p]; ok {
		return []byte(s), nil
	}
	return nil, fs.ErrNotExist
}
func (h *fakeHost) Stat(p string) (fs.FileInfo, error) {
	if f, ok := h.stats[p]; ok {
		return f, nil
	}
	return nil, fs.ErrNotExist
}
func (h *fakeHost) LookPath(n string) (string, error) {
	if p, ok := h.paths[n]; ok {
		return p, nil
	}
	return "", fs.ErrNotExist
}
func (h *fakeHost) HasFileCaps(p string) bool { return h.caps[p] }
func (h *fakeHost) OpenRW(p string) error     { return h.tun }

var alice = User{Name: "alice", UID: 1000, GID: 1000}

func find(cs []Check, name string) Check {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return Check{Name: "missing:" + name}
}

func TestDoctor(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(h *fakeHost)
		user   User
		check  string
		level  Level
		fixHas string
	}{
		{"healthy host passes", func(h *fakeHost) {}, alice, "sub-IDs", OK, ""},
		{"no sub-IDs", func(h *fakeHost) { h.files["/etc/subuid"] = "bob:1:65536\n" }, alice, "sub-IDs", Fail, "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice"},
		{"too few sub-IDs", func(h *fakeHost) { h.files["/etc/subgid"] = "alice:100000:1000\n" }, alice, "sub-IDs", Fail, "usermod"},
		{"no subuid file", func(h *fakeHost) { delete(h.files, "/etc/subuid") }, alice, "sub-IDs", Fail, "usermod"},
		{"root needs no sub-IDs", func(h *fakeHost) { delete(h.files, "/etc/subuid") }, User{Name: "root"}, "sub-IDs", OK, ""},
		{"newuidmap missing", func(h *fakeHost) { delete(h.paths, "newuidmap") }, alice, "newuidmap/newgidmap", Fail, "apt-get install uidmap"},
		{"newgidmap not setuid", func(h *fakeHost) { h.stats["/usr/bin/newgidmap"] = fakeFile{mode: 0o755} }, alice, "newuidmap/newgidmap", Fail, "chmod u+s /usr/bin/newgidmap"},
		{"file caps are enough", func(h *fakeHost) {
			h.stats["/usr/bin/newuidmap"] = fakeFile{mode: 0o755}
			h.caps["/usr/bin/newuidmap"] = true
		}, alice, "newuidmap/newgidmap", OK, ""},
		{"tun not accessible", func(h *fakeHost) { h.tun = os.ErrPermission }, alice, "/dev/net/tun", Fail, "chmod 0666 /dev/net/tun"},
		{"tun missing", func(h *fakeHost) { h.tun = fs.ErrNotExist }, alice, "/dev/net/tun", Fail, "modprobe tun"},
		{"userns clone off", func(h *fakeHost) { h.files["/proc/sys/kernel/unprivileged_userns_clone"] = "0" }, alice, "user namespaces", Fail, "kernel.unprivileged_userns_clone=1"},
		{"userns clone off is fine for root", func(h *fakeHost) { h.files["/proc/sys/kernel/unprivileged_userns_clone"] = "0" }, User{Name: "root"}, "user namespaces", OK, ""},
		{"max userns 0", func(h *fakeHost) { h.files["/proc/sys/user/max_user_namespaces"] = "0" }, alice, "user namespaces", Fail, "user.max_user_namespaces"},
		{"apparmor restriction", func(h *fakeHost) { h.files["/proc/sys/kernel/apparmor_restrict_unprivileged_userns"] = "1" }, alice, "user namespaces", Fail, "apparmor_restrict_unprivileged_userns=0"},
		{"no ip tool", func(h *fakeHost) { delete(h.paths, "ip") }, alice, "ip (iproute2)", Fail, "apt-get install iproute2"},
		{"no firewall tool warns", func(h *fakeHost) { delete(h.paths, "nft") }, alice, "iptables/nft", Warn, "apt-get install nftables iptables"},
		{"cgroup v1 warns", func(h *fakeHost) {}, alice, "cgroups", Warn, "Delegate"},
		{"privileged ports info", func(h *fakeHost) {}, alice, "privileged ports", Info, "ip_unprivileged_port_start=0"},
		{"ping sockets closed", func(h *fakeHost) { h.files["/proc/sys/net/ipv4/ping_group_range"] = "1\t0\n" }, alice, "ping", Info, "ping_group_range"},
		{"no br_netfilter", func(h *fakeHost) {}, alice, "br_netfilter", Info, "modprobe br_netfilter"},
		{"br_netfilter", func(h *fakeHost) { h.files["/proc/sys/net/bridge/bridge-nf-call-iptables"] = "1\n" }, alice, "br_netfilter", OK, ""},
		{"ping sockets open", func(h *fakeHost) { h.files["/proc/sys/net/ipv4/ping_group_range"] = "0\t2147483647\n" }, alice, "ping", OK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := healthyHost()
			tc.change(h)
			c := find(Doctor(h, tc.user), tc.check)
			if c.Level != tc.level {
				t.Fatalf("%s: level %v (%s), want %v", c.Name, c.Level, c.Detail, tc.level)
			}
			if !strings.Contains(c.Fix, tc.fixHas) {
				t.Fatalf("%s: fix %q lacks %q", c.Name, c.Fix, tc.fixHas)
			}
		})
	}
	if f := Failed(Doctor(healthyHost(), alice)); len(f) != 0 {
		t.Fatalf("healthy host has failures: %+v", f)
	}
}

func TestDetectCgroup(t *testing.T) {
	v2 := func(h *fakeHost, owner int, controllers string) {
		h.files["/proc/self/mountinfo"] = "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
		h.files["/proc/self/cgroup"] = "0::/user.slice/user-1000.slice/user@1000.service\n"
		h.files["/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/cgroup.controllers"] = controllers
		h.stats["/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/cgroup.procs"] = fakeFile{mode: 0o644, uid: owner}
	}
	for _, tc := range []struct {
		name     string
		setup    func(h *fakeHost)
		enforced bool
		level    Level
	}{
		{"v1 hybrid", func(h *fakeHost) {}, false, Warn},
		{"v2 delegated", func(h *fakeHost) { v2(h, 1000, "cpuset cpu io memory pids\n") }, true, OK},
		{"v2 owned by root", func(h *fakeHost) { v2(h, 0, "cpu memory pids\n") }, false, Warn},
		{"v2 without memory", func(h *fakeHost) { v2(h, 1000, "cpu pids\n") }, false, Warn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := healthyHost()
			tc.setup(h)
			if got := DetectCgroup(h, alice).Enforced(); got != tc.enforced {
				t.Fatalf("enforced = %v, want %v", got, tc.enforced)
			}
			if c := checkCgroup(h, alice); c.Level != tc.level {
				t.Fatalf("level %v, want %v: %s", c.Level, tc.level, c.Detail)
			}
		})
	}
}

func TestCgroupV2Fix(t *testing.T) {
	const mgr = "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service"
	for _, tc := range []struct {
		name        string
		controllers string // of the user's systemd; "" when none runs
		want        string
	}{
		{"started outside the user's systemd", "cpu memory pids\n", "systemd-run --user --scope -p Delegate=yes unetes run"},
		{"the user's systemd lacks cpu", "memory pids\n", "Delegate=cpu cpuset io memory pids"},
		{"no user systemd", "", "loginctl enable-linger alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := healthyHost()
			h.files["/proc/self/mountinfo"] = "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
			h.files["/proc/self/cgroup"] = "0::/user.slice/user-1000.slice/session-3.scope\n"
			h.files["/sys/fs/cgroup/user.slice/user-1000.slice/session-3.scope/cgroup.controllers"] = "memory pids\n"
			h.stats["/sys/fs/cgroup/user.slice/user-1000.slice/session-3.scope/cgroup.procs"] = fakeFile{mode: 0o644, uid: 0}
			if tc.controllers != "" {
				h.files[mgr+"/cgroup.controllers"] = tc.controllers
			}
			c := checkCgroup(h, alice)
			if c.Level != Warn || !strings.Contains(c.Fix, tc.want) || !strings.Contains(c.Detail, "session-3.scope") {
				t.Fatalf("%v %q, fix %q: want a warning naming the cgroup and %q", c.Level, c.Detail, c.Fix, tc.want)
			}
			if tc.want != "systemd-run --user --scope -p Delegate=yes unetes run" && !strings.Contains(c.Fix, "systemd-run --user --scope") {
				t.Fatalf("fix %q does not end with how to start unetes", c.Fix)
			}
		})
	}
}

func TestPrereqErrorNamesEveryFix(t *testing.T) {
	h := healthyHost()
	h.tun = os.ErrPermission
	delete(h.files, "/etc/subuid")
	err := &PrereqError{Checks: Failed(Doctor(h, alice))}
	for _, want := range []string{"chmod 0666 /dev/net/tun", "usermod --add-subuids", "unetes doctor"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
}
