package main

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/unetes/unetes/nsinit"
)

func TestResolveRun(t *testing.T) {
	paths := nsinit.Paths{StateDir: "/tmp/unetes-1/default", DataDir: "/d", ConfigDir: "/c"}
	rc := []byte("nameserver 127.0.0.53\n")
	for _, tc := range []struct {
		name    string
		args    runArgs
		rc      []byte
		wantErr string
		env     []string
		check   func(t *testing.T, c runConfig)
	}{
		{name: "a proxy in the environment: the cluster bypasses it", args: runArgs{apiPort: 6443}, rc: rc, env: []string{"HTTPS_PROXY=http://proxy:3128"},
			check: func(t *testing.T, c runConfig) {
				if len(c.proxy.Env) != 2 || !strings.HasPrefix(c.proxy.Env[0], "NO_PROXY=localhost,127.0.0.1,::1,10.0.2.0/24,10.88.0.0/16,10.96.0.0/16,") {
					t.Fatalf("proxy env %q", c.proxy.Env)
				}
			}},
		{name: "sandbox defaults", args: runArgs{noKubernetes: true, apiPort: 6443, inst: instanceFlags{name: "default"}}, rc: rc,
			check: func(t *testing.T, c runConfig) {
				if c.net.MTU != 65520 || c.net.AllowHostLoopback || c.name != "default" || c.net.DNSUpstreams[0].String() != "127.0.0.53:53" {
					t.Fatalf("%+v", c)
				}
			}},
		{name: "host loopback and mtu", args: runArgs{noKubernetes: true, apiPort: 6443, allowHostLoopback: true, mtu: 1500}, rc: rc,
			check: func(t *testing.T, c runConfig) {
				if c.net.MTU != 1500 || !c.net.AllowHostLoopback {
					t.Fatalf("%+v", c)
				}
			}},
		{name: "kubernetes by default", args: runArgs{apiPort: 6443}, rc: rc,
			check: func(t *testing.T, c runConfig) {
				if !c.kubernetes || c.apiPort != 6443 {
					t.Fatalf("%+v", c)
				}
			}},
		{name: "all add-ons by default", args: runArgs{apiPort: 6443}, rc: rc,
			check: func(t *testing.T, c runConfig) {
				if got := strings.Join(c.addons(), ","); got != "dns,storage,metrics,lb,join" {
					t.Fatalf("add-ons %q", got)
				}
			}},
		{name: "disable add-ons", args: runArgs{apiPort: 6443, disable: "metrics,dns"}, rc: rc,
			check: func(t *testing.T, c runConfig) {
				if got := strings.Join(c.addons(), ","); got != "storage,lb,join" {
					t.Fatalf("add-ons %q", got)
				}
			}},
		{name: "ipv6 where the host has it", args: runArgs{noKubernetes: true, apiPort: 6443}, rc: rc,
			check: func(t *testing.T, c runConfig) {
				if c.net.Guest6.String() != "fd75:6e65:7465::100" || c.net.Gateway6.String() != "fd75:6e65:7465::2" {
					t.Fatalf("ipv6: %v via %v", c.net.Guest6, c.net.Gateway6)
				}
			}},
		{name: "no ipv6 where the host has none", args: runArgs{noKubernetes: true, apiPort: 6443}, rc: rc,
			check: func(t *testing.T, c runConfig) {
				if c.net.Guest6.IsValid() || c.net.Gateway6.IsValid() {
					t.Fatalf("ipv6 without the host's: %v via %v", c.net.Guest6, c.net.Gateway6)
				}
			}},
		{name: "docker by default, with or without kubernetes", args: runArgs{noKubernetes: true, apiPort: 6443}, rc: rc,
			check: func(t *testing.T, c runConfig) {
				if !c.docker {
					t.Fatalf("docker off: %+v", c)
				}
			}},
		{name: "disable docker and an add-on", args: runArgs{apiPort: 6443, disable: "docker, dns"}, rc: rc,
			check: func(t *testing.T, c runConfig) {
				if c.docker || strings.Join(c.disabled, ",") != "dns" {
					t.Fatalf("docker %v, add-ons off %v", c.docker, c.disabled)
				}
			}},
		{name: "unknown name in --disable names docker too", args: runArgs{apiPort: 6443, disable: "dokker"}, rc: rc,
			wantErr: `--disable: no add-on "dokker"; the add-ons are dns, storage, metrics, lb, join, or docker`},
		{name: "no add-ons without kubernetes", args: runArgs{noKubernetes: true, apiPort: 6443}, rc: rc,
			check: func(t *testing.T, c runConfig) {
				if len(c.addons()) != 0 {
					t.Fatalf("add-ons %v", c.addons())
				}
			}},
		{name: "load balancers on loopback by default", args: runArgs{apiPort: 6443}, rc: rc,
			check: func(t *testing.T, c runConfig) {
				if c.lbAddress.String() != "127.0.0.1" || c.lbIngress != c.lbAddress {
					t.Fatalf("lb %v ingress %v", c.lbAddress, c.lbIngress)
				}
			}},
		{name: "load balancers on every address report the host's", args: runArgs{apiPort: 6443, lbAddress: "0.0.0.0"}, rc: rc,
			check: func(t *testing.T, c runConfig) {
				if c.lbAddress.String() != "0.0.0.0" || c.lbIngress.String() != "192.0.2.2" {
					t.Fatalf("lb %v ingress %v", c.lbAddress, c.lbIngress)
				}
			}},
		{name: "the API on loopback by default", args: runArgs{apiPort: 6443}, rc: rc,
			check: func(t *testing.T, c runConfig) {
				if c.apiServer() != "https://127.0.0.1:6443" || c.apiEndpoint() != "127.0.0.1:6443" {
					t.Fatalf("server %s endpoint %s", c.apiServer(), c.apiEndpoint())
				}
			}},
		{name: "the API on every address: local clients use loopback, other hosts the host's address", args: runArgs{apiPort: 7443, apiAddress: "0.0.0.0"}, rc: rc,
			check: func(t *testing.T, c runConfig) {
				if c.apiAddress.String() != "0.0.0.0" || c.apiServer() != "https://127.0.0.1:7443" || c.apiEndpoint() != "192.0.2.2:7443" {
					t.Fatalf("address %v server %s endpoint %s", c.apiAddress, c.apiServer(), c.apiEndpoint())
				}
			}},
		{name: "the API on one host address", args: runArgs{apiPort: 6443, apiAddress: "198.51.100.7"}, rc: rc,
			check: func(t *testing.T, c runConfig) {
				if c.apiServer() != "https://198.51.100.7:6443" || c.apiEndpoint() != "198.51.100.7:6443" {
					t.Fatalf("server %s endpoint %s", c.apiServer(), c.apiEndpoint())
				}
			}},
		{name: "bad api address", args: runArgs{apiPort: 6443, apiAddress: "::1"}, rc: rc, wantErr: `--api-address "::1" is not an IPv4 address`},
		{name: "bad lb address", args: runArgs{apiPort: 6443, lbAddress: "localhost"}, rc: rc, wantErr: `--lb-address "localhost" is not an IPv4 address`},
		{name: "unknown add-on", args: runArgs{apiPort: 6443, disable: "dns,traefik"}, rc: rc, wantErr: `--disable: no add-on "traefik"`},
		{name: "bad eviction threshold", args: runArgs{apiPort: 6443, diskFree: "120%"}, rc: rc, wantErr: `--eviction-disk-free "120%" is not a percentage between 0 and 100`},
		{name: "eviction threshold as a size", args: runArgs{apiPort: 6443, diskFree: "5Gi"}, rc: rc,
			check: func(t *testing.T, c runConfig) {
				if c.diskFree.Bytes != 5<<30 || c.diskFree.String() != "5Gi" {
					t.Fatalf("%+v", c.diskFree)
				}
			}},
		{name: "bad api port", args: runArgs{apiPort: 70000}, rc: rc, wantErr: "--api-port 70000"},
		{name: "bad publish", args: runArgs{noKubernetes: true, apiPort: 6443, publish: stringList{"80"}}, rc: rc, wantErr: "--publish: malformed forward"},
		{name: "no nameserver", args: runArgs{noKubernetes: true, apiPort: 6443, resolvConf: "/etc/resolv.conf"}, rc: []byte("search x\n"),
			wantErr: "no nameserver in the host's resolv.conf /etc/resolv.conf: add a nameserver line, or pass --resolv-conf FILE"},
		{name: "bad mtu", args: runArgs{noKubernetes: true, apiPort: 6443, mtu: 9}, rc: rc, wantErr: "mtu 9 out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := resolveRun(tc.args, paths, nsinit.User{UID: 1}, tc.rc, netip.MustParseAddr("192.0.2.2"), tc.name == "ipv6 where the host has it", tc.env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestDispatch(t *testing.T) {
	var out, errb bytes.Buffer
	if code := dispatch([]string{"nope"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown command "nope"`) {
		t.Fatalf("unknown command: %d %q", code, errb.String())
	}
	out.Reset()
	if code := dispatch([]string{"--help"}, &out, &errb); code != 0 || strings.Contains(out.String(), "_child") || !strings.Contains(out.String(), "doctor") {
		t.Fatalf("help lists hidden roles or misses commands: %q", out.String())
	}
}

func TestLeadingName(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		name, rest string
	}{
		{[]string{"--name", "a", "get", "pods"}, "a", "get pods"},
		{[]string{"--name=b", "images", "ls"}, "b", "images ls"},
		{[]string{"get", "--name", "x"}, "default", "get --name x"},
		{nil, "default", ""},
	} {
		inst, rest := leadingName(tc.args)
		if inst.name != tc.name || strings.Join(rest, " ") != tc.rest {
			t.Errorf("leadingName(%q) = %q %q", tc.args, inst.name, rest)
		}
	}
}

func TestCheckAPIPortNamesTheFlag(t *testing.T) {
	// 192.0.2.1 (TEST-NET-1) is on no host.
	err := checkAPIPort(netip.MustParseAddr("192.0.2.1"), 6443)
	if err == nil || !strings.Contains(err.Error(), "--api-address 192.0.2.1 is not an address of this host") {
		t.Fatalf("err = %v", err)
	}
}
