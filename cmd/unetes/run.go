package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/unetes/unetes/embed"
	"github.com/unetes/unetes/embed/addons"
	"github.com/unetes/unetes/hostfwd"
	"github.com/unetes/unetes/netstack"
	"github.com/unetes/unetes/nsinit"
)

type runArgs struct {
	inst              instanceFlags
	noKubernetes      bool
	allowHostLoopback bool
	mtu               int
	resolvConf        string
	apiPort           int
	apiAddress        string
	debug             bool
	verbose           bool
	cpuProfile        string
	publish           stringList
	disable           string
	lbAddress         string
	diskFree          string
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

type runConfig struct {
	name         string
	paths        nsinit.Paths
	user         nsinit.User
	net          netstack.Config
	publish      []hostfwd.Spec
	kubernetes   bool
	apiPort      int
	apiAddress   netip.Addr        // where the API listens on the host (--api-address)
	apiAdvertise netip.Addr        // where joining nodes reach it: apiAddress, or the host's address for 0.0.0.0
	disabled     []string          // add-ons turned off (--disable)
	docker       bool              // dockerd runs (not --disable docker)
	lbAddress    netip.Addr        // where LoadBalancer Services and hostPorts listen on the host
	lbIngress    netip.Addr        // what their status says: lbAddress, or the host's address for 0.0.0.0
	cgroup       nsinit.CgroupMode // decides whether pod limits are enforced
	proxy        proxySettings     // what the namespace gets of the host's HTTP(S) proxy
	diskFree     embed.DiskFree    // the data dir's free space below which the kubelet evicts pods
	verbose      bool              // print the start-up time line at ready (-v)
	join         *joinedNode       // a joined node (`unetes join`): the control plane runs elsewhere
}

// addons are the add-ons that run: none without Kubernetes.
func (cfg runConfig) addons() []string {
	var on []string
	for _, n := range addons.Names() {
		if cfg.kubernetes && !slices.Contains(cfg.disabled, n) {
			on = append(on, n)
		}
	}
	return on
}

// resolveRun is the pure part of `unetes run`: flags, the host's
// resolv.conf content, its first address and whether it has IPv6 in,
// configuration out.
func resolveRun(a runArgs, paths nsinit.Paths, u nsinit.User, resolvConf []byte, hostAddr netip.Addr, hostIPv6 bool, environ []string) (runConfig, error) {
	if a.apiPort < 1 || a.apiPort > 65535 {
		return runConfig{}, fmt.Errorf("--api-port %d is not a port from 1 to 65535", a.apiPort)
	}
	nc, err := netstack.Resolve(netstack.Args{MTU: a.mtu, AllowHostLoopback: a.allowHostLoopback, HostIPv6: hostIPv6}, resolvConf)
	if err != nil {
		if errors.Is(err, netstack.ErrNoResolvers) {
			return runConfig{}, fmt.Errorf("%w %s: add a nameserver line, or pass --resolv-conf FILE", err, a.resolvConf)
		}
		return runConfig{}, err
	}
	disabled, docker, err := parseDisable(a.disable)
	if err != nil {
		return runConfig{}, err
	}
	diskFree := embed.DefaultDiskFree
	if a.diskFree != "" {
		if diskFree, err = embed.ParseDiskFree(a.diskFree); err != nil {
			return runConfig{}, fmt.Errorf("--eviction-disk-free %w", err)
		}
	}
	lb, err := hostAddrFlag("lb-address", a.lbAddress)
	if err != nil {
		return runConfig{}, err
	}
	ingress := reachedAt(lb, hostAddr)
	api, err := hostAddrFlag("api-address", a.apiAddress)
	if err != nil {
		return runConfig{}, err
	}
	advertise := reachedAt(api, hostAddr)
	if advertise.IsUnspecified() { // no host address: only this host reaches it
		advertise = hostfwd.DefaultHostIP
	}
	var pub []hostfwd.Spec
	for _, p := range a.publish {
		spec, err := hostfwd.ParseSpec(p)
		if err != nil {
			return runConfig{}, fmt.Errorf("--publish: %w", err)
		}
		pub = append(pub, spec)
	}
	cfg := runConfig{name: a.inst.name, paths: paths, user: u, net: nc, publish: pub, kubernetes: !a.noKubernetes, apiPort: a.apiPort,
		apiAddress: api, apiAdvertise: advertise, disabled: disabled, docker: docker, lbAddress: lb, lbIngress: ingress, diskFree: diskFree, verbose: a.verbose}
	kc := cfg.embedConfig()
	cfg.proxy = resolveProxy(environ, clusterExempt(nc.Subnet, kc.ClusterCIDR, kc.ServiceCIDR, kc.ClusterDomain), nc.Gateway, a.allowHostLoopback)
	return cfg, nil
}

// hostAddrFlag parses a flag that names an IPv4 address of the host to
// listen on; empty is the loopback address.
func hostAddrFlag(flag, v string) (netip.Addr, error) {
	ip, err := hostfwd.DefaultHostIP, error(nil)
	if v != "" {
		ip, err = netip.ParseAddr(v)
	}
	if err != nil || !ip.Is4() {
		return netip.Addr{}, fmt.Errorf("--%s %q is not an IPv4 address: use 127.0.0.1 (the default), 0.0.0.0 (every address) or one of `ip -br addr`", flag, v)
	}
	return ip, nil
}

// reachedAt is the address a listener on addr is reached at from other
// hosts: addr, or for every address (0.0.0.0) the host's first one.
func reachedAt(addr, hostAddr netip.Addr) netip.Addr {
	if addr.IsUnspecified() && hostAddr.IsValid() {
		return hostAddr
	}
	return addr
}

// parseDisable splits `--disable` into the add-ons turned off and whether
// docker still runs: docker is no add-on (it runs without Kubernetes too),
// but is turned off the same way.
func parseDisable(list string) (off []string, docker bool, err error) {
	var rest []string
	docker = true
	for _, n := range strings.Split(list, ",") {
		if strings.TrimSpace(n) == embed.Docker {
			docker = false
		} else {
			rest = append(rest, n)
		}
	}
	off, err = addons.ParseDisable(strings.Join(rest, ","))
	if err != nil {
		return nil, false, fmt.Errorf("%w, or %s", err, embed.Docker)
	}
	return off, docker, nil
}

func runRun(args []string, stdout, stderr io.Writer) int {
	var a runArgs
	fs := newFlagSet("run", "run [-v] [--name N] [--no-kubernetes] [--disable ADDONS] [--api-port N] [--api-address IP] [--lb-address IP] [--allow-host-loopback] [--mtu N] [-p [IP:]HOSTPORT:PORT[/PROTO]]...", stderr)
	a.inst.register(fs)
	fs.BoolVar(&a.noKubernetes, "no-kubernetes", false, "run only the rootless sandbox, its NAT and forwards")
	fs.IntVar(&a.apiPort, "api-port", 6443, "host port of the Kubernetes API")
	fs.StringVar(&a.apiAddress, "api-address", "127.0.0.1", "host address the Kubernetes API is published on, for nodes on other hosts to join (0.0.0.0 for every address; its certificate then names the host's first address)")
	fs.StringVar(&a.disable, "disable", "", "what not to run, comma-separated: the add-ons "+strings.Join(addons.Names(), ", ")+", and docker (the Docker Engine API)")
	fs.StringVar(&a.lbAddress, "lb-address", "127.0.0.1", "host address that LoadBalancer Services and hostPorts are published on (0.0.0.0 for every address)")
	fs.StringVar(&a.diskFree, "eviction-disk-free", embed.DefaultDiskFree.String(), "free space of the data dir's disk below which the kubelet evicts pods: a percentage (10%) or a size (5Gi); unetes warns below 1.5 times it")
	fs.BoolVar(&a.allowHostLoopback, "allow-host-loopback", false, "let connections to the gateway 10.0.2.2 reach the host's 127.0.0.1")
	fs.IntVar(&a.mtu, "mtu", netstack.DefaultMTU, "MTU of the namespace's interface")
	fs.StringVar(&a.resolvConf, "resolv-conf", "/etc/resolv.conf", "resolv.conf whose nameservers the DNS relay at 10.0.2.3 forwards to")
	fs.BoolVar(&a.debug, "debug", false, "log every NAT decision")
	fs.BoolVar(&a.verbose, "v", false, "at ready, print a time line of start-up: run's phases and the sandbox's (components, add-ons) side by side")
	fs.Var(&a.publish, "publish", "forward a host port at start; `SPEC` is [IP:]HOSTPORT:PORT[/tcp|/udp] (repeatable, saved like other forwards)")
	fs.Var(&a.publish, "p", "short for --publish `SPEC`")
	fs.StringVar(&a.cpuProfile, "cpuprofile", "", "write a CPU profile of the run process (NAT included) to FILE")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unetes run: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	paths, err := a.inst.paths()
	if err != nil {
		return fail(stderr, err)
	}
	if n, err := loadJoinedNode(filepath.Join(paths.DataDir, embed.JoinDirName)); err == nil {
		return fail(stderr, fmt.Errorf("instance %q is node %s of the cluster at %s: start it with `unetes join --name %s` (or `unetes reset --name %s` to make it a cluster of its own)", a.inst.name, n.Node, n.Server, a.inst.name, a.inst.name))
	}
	u, _ := currentUser()
	rc, err := os.ReadFile(a.resolvConf)
	if err != nil {
		return fail(stderr, fmt.Errorf("read %s: %w (pass --resolv-conf FILE)", a.resolvConf, err))
	}
	v6, _ := os.ReadFile("/proc/net/ipv6_route")
	cfg, err := resolveRun(a, paths, u, rc, firstHostAddr(), netstack.HostHasIPv6(v6), os.Environ())
	if err != nil {
		return fail(stderr, err)
	}
	cfg.cgroup = nsinit.DetectCgroup(nsinit.LiveHost{}, u)
	if a.cpuProfile != "" {
		stopProfile, err := startCPUProfile(a.cpuProfile)
		if err != nil {
			return fail(stderr, err)
		}
		defer stopProfile()
	}
	if err := startAndServe(cfg, stdout, stderr, a.debug); err != nil {
		return fail(stderr, err)
	}
	return 0
}

// firstHostAddr is the first IPv4 address of an up, non-loopback interface
// of the host that is not link-local, or none: where LoadBalancer Services
// say they are reached when they bind all addresses.
func firstHostAddr() netip.Addr {
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip, ok := netip.AddrFromSlice(n.IP.To4()); ok && !ip.IsLinkLocalUnicast() && !ip.IsLoopback() {
				return ip
			}
		}
	}
	return netip.Addr{}
}

// waitSandbox returns when the NAT runs and the process inside answers.
func waitSandbox(ctx context.Context, d *netstack.ParentDriver, stateDir string) error {
	select {
	case <-d.Ready():
		if err := d.Err(); err != nil {
			return err
		}
	case <-ctx.Done():
		return fmt.Errorf("no TAP device from the child: %w", ctx.Err())
	}
	sock := filepath.Join(stateDir, nsinit.ExecSocketName)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the process inside did not open %s: %w", sock, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// cgroupWhy says in a few words why limits are or are not enforced.
func cgroupWhy(m nsinit.CgroupMode) string {
	switch {
	case m.Enforced():
		return "delegated cgroup v2"
	case !m.V2:
		return "cgroup v1 or hybrid hierarchy"
	default:
		return "cgroup v2 without delegated cpu, memory and pids"
	}
}
