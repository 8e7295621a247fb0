package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/unetes/unetes/embed"
	"github.com/unetes/unetes/embed/join"
	"github.com/unetes/unetes/hostfwd"
	"github.com/unetes/unetes/netstack"
	"github.com/unetes/unetes/nsinit"
	"k8s.io/apimachinery/pkg/util/validation"
)

// joinedNode is what `unetes join` saved in <data>/join/node.json: the
// instance is a node of that cluster, and later `unetes join --name N`
// starts it again as that node.
type joinedNode struct {
	Endpoint string `json:"endpoint"` // HOST:PORT the node joined at
	Server   string `json:"server"`   // the API's URL, from cluster-info
	Node     string `json:"node"`     // the node's name
	Address  string `json:"address"`  // the node's address: its host's
}

const joinedNodeFile = "node.json"

type joinArgs struct {
	inst        instanceFlags
	token       string
	caCertHash  string
	nodeName    string
	nodeAddress string
	disable     string
	mtu         int
	resolvConf  string
	verbose     bool
	debug       bool
}

// runJoin starts a node-only instance that joins another instance's
// cluster (`unetes join HOST:PORT --token T --ca-cert-hash H`), or starts a
// node that joined before again (`unetes join --name N`).
func runJoin(args []string, stdout, stderr io.Writer) int {
	var a joinArgs
	fs := newFlagSet("join", "join HOST:PORT --token T --ca-cert-hash sha256:H [--name N] [--node-name NAME] [--node-address IP] [--disable docker] [-v]\n       join [--name N]   (a node that joined before, again)", stderr)
	a.inst.register(fs)
	fs.StringVar(&a.token, "token", "", "the cluster's bootstrap token (`unetes token` on the server prints it)")
	fs.StringVar(&a.caCertHash, "ca-cert-hash", "", "the pin of the cluster's CA, sha256:HEX (`unetes token` on the server prints it)")
	fs.StringVar(&a.nodeName, "node-name", "", "the node's name in the cluster (default: this host's name)")
	fs.StringVar(&a.nodeAddress, "node-address", "", "this host's address the cluster reaches the node at (default: the one this host reaches the server from)")
	fs.StringVar(&a.disable, "disable", "", "docker: run no Docker Engine API on this node")
	fs.IntVar(&a.mtu, "mtu", netstack.DefaultMTU, "MTU of the namespace's interface")
	fs.StringVar(&a.resolvConf, "resolv-conf", "/etc/resolv.conf", "resolv.conf whose nameservers the DNS relay at 10.0.2.3 forwards to")
	fs.BoolVar(&a.verbose, "v", false, "at ready, print a time line of start-up")
	fs.BoolVar(&a.debug, "debug", false, "log every NAT decision")
	// HOST:PORT may come before the flags, as kubeadm and k3s take it.
	var endpoint string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		endpoint, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 && endpoint == "" {
		endpoint = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return fail(stderr, fmt.Errorf("join: unexpected argument %q", fs.Arg(0)))
	}
	paths, err := a.inst.paths()
	if err != nil {
		return fail(stderr, err)
	}
	if pid, err := nsinit.RunningPID(paths.StateDir); err == nil {
		return fail(stderr, &nsinit.RunningError{Name: a.inst.name, PID: pid})
	}
	docker := true
	switch strings.TrimSpace(a.disable) {
	case "":
	case embed.Docker:
		docker = false
	default:
		return fail(stderr, fmt.Errorf("join --disable %q: a joined node can only leave out docker (the add-ons run on the server)", a.disable))
	}
	node, err := prepareJoin(context.Background(), a, endpoint, paths, stdout)
	if err != nil {
		return fail(stderr, err)
	}
	rc, err := os.ReadFile(a.resolvConf)
	if err != nil {
		return fail(stderr, fmt.Errorf("read %s: %w (pass --resolv-conf FILE)", a.resolvConf, err))
	}
	u, _ := currentUser()
	v6, _ := os.ReadFile("/proc/net/ipv6_route")
	ra := runArgs{inst: a.inst, noKubernetes: true, apiPort: 6443, mtu: a.mtu, resolvConf: a.resolvConf, verbose: a.verbose}
	if !docker {
		ra.disable = embed.Docker
	}
	cfg, err := resolveRun(ra, paths, u, rc, firstHostAddr(), netstack.HostHasIPv6(v6), os.Environ())
	if err != nil {
		return fail(stderr, err)
	}
	cfg.join = &node
	cfg.cgroup = nsinit.DetectCgroup(nsinit.LiveHost{}, u)
	if err := startAndServe(cfg, stdout, stderr, a.debug); err != nil {
		return fail(stderr, err)
	}
	return 0
}

// prepareJoin checks the cluster and, the first time, writes what the node
// joins with; nothing is written before every check has passed. A node
// that joined before starts again with what it saved.
func prepareJoin(ctx context.Context, a joinArgs, endpoint string, paths nsinit.Paths, stdout io.Writer) (joinedNode, error) {
	dir := filepath.Join(paths.DataDir, embed.JoinDirName)
	saved, err := loadJoinedNode(dir)
	switch {
	case err == nil && (endpoint == "" || endpoint == saved.Endpoint):
		if a.nodeName != "" && a.nodeName != saved.Node {
			return joinedNode{}, fmt.Errorf("instance %q joined as node %s: --node-name cannot change it (`unetes reset --name %s` first to join anew)", a.inst.name, saved.Node, a.inst.name)
		}
		fmt.Fprintf(stdout, "unetes: instance %q joins %s again as node %s\n", a.inst.name, saved.Server, saved.Node)
		return saved, nil
	case err == nil:
		return joinedNode{}, fmt.Errorf("instance %q is a node of the cluster at %s: join %s with another --name, or `unetes reset --name %s` first", a.inst.name, saved.Endpoint, endpoint, a.inst.name)
	case !errors.Is(err, os.ErrNotExist):
		return joinedNode{}, err
	case endpoint == "":
		return joinedNode{}, fmt.Errorf("instance %q has joined no cluster: give the server's HOST:PORT, --token and --ca-cert-hash (`unetes token` on the server prints them)", a.inst.name)
	}
	if _, err := os.Stat(filepath.Join(paths.DataDir, "pki", "ca.key")); err == nil {
		return joinedNode{}, fmt.Errorf("instance %q runs a cluster of its own (%s has its CA): join with another --name, or `unetes reset --name %s` first", a.inst.name, paths.DataDir, a.inst.name)
	}
	req := join.Request{Endpoint: endpoint, Token: a.token, CACertHash: a.caCertHash}
	if err := req.Check(); err != nil {
		return joinedNode{}, err
	}
	name, err := joinNodeName(a.nodeName)
	if err != nil {
		return joinedNode{}, err
	}
	addr, err := joinNodeAddress(a.nodeAddress, endpoint)
	if err != nil {
		return joinedNode{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cluster, err := join.Discover(ctx, req)
	if err != nil {
		return joinedNode{}, err
	}
	if err := join.CheckNodeName(ctx, cluster, a.token, name); err != nil {
		return joinedNode{}, err
	}
	node := joinedNode{Endpoint: endpoint, Server: cluster.Server, Node: name, Address: addr.String()}
	if err := embed.WriteBootstrapKubeconfig(dir, cluster.Server, cluster.CA, a.token); err != nil {
		os.RemoveAll(dir)
		return joinedNode{}, fmt.Errorf("save the join: %w", err)
	}
	b, _ := json.MarshalIndent(node, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, joinedNodeFile), append(b, '\n'), 0o600); err != nil {
		os.RemoveAll(dir)
		return joinedNode{}, fmt.Errorf("save the join: %w", err)
	}
	fmt.Fprintf(stdout, "unetes: the cluster at %s checks out (token, CA pin, clock); joining as node %s at %s\n", cluster.Server, name, addr)
	return node, nil
}

func loadJoinedNode(dir string) (joinedNode, error) {
	b, err := os.ReadFile(filepath.Join(dir, joinedNodeFile))
	if err != nil {
		return joinedNode{}, err
	}
	var n joinedNode
	if err := json.Unmarshal(b, &n); err != nil || n.Server == "" || n.Node == "" || n.Address == "" {
		return joinedNode{}, fmt.Errorf("%s is damaged (%v): `unetes reset` the instance and join again", filepath.Join(dir, joinedNodeFile), err)
	}
	return n, nil
}

// joinNodeName is the node's name: the flag, or this host's name in
// lower case, which must be a DNS subdomain.
func joinNodeName(flag string) (string, error) {
	name := flag
	if name == "" {
		h, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("this host's name: %w (pass --node-name)", err)
		}
		name = strings.ToLower(h)
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return "", fmt.Errorf("node name %q is not a DNS name (%s): pass --node-name", name, strings.Join(errs, "; "))
	}
	return name, nil
}

// joinNodeAddress is the address the cluster reaches this node at: the
// flag (one of this host's), or the address this host reaches the server
// from. No packet is sent: a UDP socket is only bound and connected.
func joinNodeAddress(flag, endpoint string) (netip.Addr, error) {
	if flag != "" {
		ip, err := netip.ParseAddr(flag)
		if err != nil || !ip.Is4() || !hostHasAddr(ip) {
			return netip.Addr{}, fmt.Errorf("--node-address %q is not an IPv4 address of this host (`ip -br addr` lists them)", flag)
		}
		return ip, nil
	}
	c, err := net.Dial("udp4", endpoint)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("no route from this host to %s: %w (pass --node-address)", endpoint, err)
	}
	defer c.Close()
	ip := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	if ip.IsLoopback() {
		return netip.Addr{}, fmt.Errorf("the server %s is on this host's loopback, where other hosts do not reach this node: join at the server's address, or pass --node-address", endpoint)
	}
	return ip, nil
}

func hostHasAddr(ip netip.Addr) bool {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if have, ok := netip.AddrFromSlice(n.IP.To4()); ok && have == ip {
				return true
			}
		}
	}
	return false
}

// forwardKubelet publishes the kubelet's port on the node's address: the
// cluster's apiserver dials it there (logs, exec, port-forward).
func forwardKubelet(ctx context.Context, j joinedNode, fwd *hostfwd.Manager) error {
	ip, err := netip.ParseAddr(j.Address)
	if err != nil {
		return fmt.Errorf("node address %q: %w", j.Address, err)
	}
	spec := hostfwd.Spec{HostIP: ip, HostPort: embed.KubeletPort, Port: embed.KubeletPort, Proto: "tcp"}
	if err := fwd.Publish(ctx, hostfwd.OwnerNode, []hostfwd.Spec{spec, overlayForward(ip)}); err != nil {
		return fmt.Errorf("forward the kubelet's port %s (the apiserver reaches the node there) and the overlay's %s (the other nodes' pods): %w", spec.Key(), overlayForward(ip).Key(), err)
	}
	return nil
}

// waitJoined waits until the node's components run: the kubelet has
// bootstrapped its certificate and registered, the node has its pod range
// and kube-proxy runs as the node.
func (s *session) waitJoined(ctx context.Context) error {
	s.fwd.NoServices("this instance is a joined node: forward Services from the server's instance")
	t := time.Now()
	if err := poll(ctx, s.inst, 3*time.Minute, "the node (TLS bootstrap, kubelet, kube-proxy)", func(ctx context.Context) error {
		return componentsReady(ctx, s.cfg.paths.StateDir, embed.Containerd, embed.Kubelet, embed.KubeProxy, embed.Overlay)
	}); err != nil {
		return fmt.Errorf("%w (see `unetes logs --name %s kubelet` and `... child`)", err, s.cfg.name)
	}
	s.progress("node joined", time.Since(t))
	return s.waitDocker(ctx)
}
