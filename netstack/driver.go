package netstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rootless-containers/rootlesskit/v3/pkg/api"
	"github.com/rootless-containers/rootlesskit/v3/pkg/messages"
	"github.com/rootless-containers/rootlesskit/v3/pkg/network"
)

const (
	opaqueTAPSocket = "unetes.tap-socket"
	tapSocketName   = "tap.sock"
	tapWaitTimeout  = 30 * time.Second
)

// ParentDriver is the RootlessKit network driver of the parent side: it hands
// the child the addressing and a socket, receives the TAP fd on it and runs
// the Stack on that fd.
type ParentDriver struct {
	cfg   Config
	log   *slog.Logger
	ready chan struct{}

	mu    sync.Mutex
	stack *Stack
	tap   *os.File
	err   error
}

var _ network.ParentDriver = (*ParentDriver)(nil)

// NewParentDriver returns a driver for cfg.
func NewParentDriver(cfg Config, log *slog.Logger) *ParentDriver {
	return &ParentDriver{cfg: cfg, log: log, ready: make(chan struct{})}
}

// Info implements network.ParentDriver.
func (d *ParentDriver) Info(ctx context.Context) (*api.NetworkDriverInfo, error) {
	return &api.NetworkDriverInfo{
		Driver:         "unetes-netstack",
		DNS:            []net.IP{net.IP(d.cfg.DNS.AsSlice())},
		ChildIP:        net.IP(d.cfg.Guest.AsSlice()),
		DynamicChildIP: false,
	}, nil
}

// MTU implements network.ParentDriver.
func (d *ParentDriver) MTU() int { return d.cfg.MTU }

// Ready is closed once the stack runs on the TAP fd or failed to (see Err).
func (d *ParentDriver) Ready() <-chan struct{} { return d.ready }

// Err reports why the stack did not start, after Ready is closed.
func (d *ParentDriver) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Stack returns the running stack, or nil.
func (d *ParentDriver) Stack() *Stack {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stack
}

// ConfigureNetwork implements network.ParentDriver. It returns at once; the
// stack starts when the child passes the TAP fd.
func (d *ParentDriver) ConfigureNetwork(childPID int, stateDir, detachedNetNSPath string) (*messages.ParentInitNetworkDriverCompleted, func() error, error) {
	if detachedNetNSPath != "" {
		return nil, nil, errors.New("netstack: detached network namespaces are not supported")
	}
	sock := filepath.Join(stateDir, tapSocketName)
	os.Remove(sock)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return nil, nil, fmt.Errorf("listen for the TAP fd: %w", err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		l.Close()
		return nil, nil, fmt.Errorf("restrict %s: %w", sock, err)
	}
	go d.acceptTAP(l)
	opaque := map[string]string{opaqueTAPSocket: sock}
	if d.cfg.Guest6.IsValid() {
		opaque[opaqueGuest6] = netip.PrefixFrom(d.cfg.Guest6, d.cfg.Subnet6.Bits()).String()
		opaque[opaqueGateway6] = d.cfg.Gateway6.String()
	}
	msg := &messages.ParentInitNetworkDriverCompleted{
		Dev:                 TAPName,
		IP:                  d.cfg.Guest.String(),
		Netmask:             d.cfg.Subnet.Bits(),
		Gateway:             d.cfg.Gateway.String(),
		DNS:                 []string{d.cfg.DNS.String()},
		MTU:                 d.cfg.MTU,
		NetworkDriverOpaque: opaque,
	}
	cleanup := func() error {
		l.Close()
		<-d.ready
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.stack != nil {
			d.stack.Close()
			d.stack = nil
		}
		if d.tap != nil {
			d.tap.Close()
			d.tap = nil
		}
		return nil
	}
	return msg, cleanup, nil
}

func (d *ParentDriver) acceptTAP(l *net.UnixListener) {
	defer close(d.ready)
	defer l.Close()
	fail := func(err error) {
		d.mu.Lock()
		d.err = err
		d.mu.Unlock()
	}
	l.SetDeadline(time.Now().Add(tapWaitTimeout))
	c, err := l.AcceptUnix()
	if err != nil {
		fail(fmt.Errorf("wait for the TAP fd from the child: %w", err))
		return
	}
	defer c.Close()
	f, err := recvFD(c)
	if err != nil {
		fail(err)
		return
	}
	st, err := New(d.cfg, int(f.Fd()), d.log)
	if err != nil {
		f.Close()
		fail(err)
		return
	}
	d.mu.Lock()
	d.stack, d.tap = st, f
	d.mu.Unlock()
	d.log.Debug("netstack running", "mtu", d.cfg.MTU, "guest", d.cfg.Guest, "gateway", d.cfg.Gateway)
}

// ChildDriver is the RootlessKit network driver of the child side.
type ChildDriver struct {
	Log io.Writer // warnings of the child's set-up
}

var _ network.ChildDriver = ChildDriver{}

// ConfigureNetworkChild opens the TAP device in the child's network namespace
// and passes its fd to the parent. RootlessKit then brings it up with the
// addresses of msg. It first sets the namespace's IPv6 and TCP defaults
// (disableIPv6, setLocalCongestion), before anything inside opens a socket.
func (d ChildDriver) ConfigureNetworkChild(msg *messages.ParentInitNetworkDriverCompleted, detachedNetNSPath string) (string, error) {
	sock := msg.NetworkDriverOpaque[opaqueTAPSocket]
	if sock == "" {
		return "", errors.New("netstack: the parent sent no TAP socket")
	}
	disableIPv6()
	if err := setLocalCongestion(); err != nil && d.Log != nil {
		fmt.Fprintf(d.Log, "unetes: forwarded ports and the NAT will be slower: %v\n", err)
	}
	f, err := openTAP(msg.Dev)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if g6 := msg.NetworkDriverOpaque[opaqueGuest6]; g6 != "" {
		guest, err1 := netip.ParsePrefix(g6)
		gw, err2 := netip.ParseAddr(msg.NetworkDriverOpaque[opaqueGateway6])
		if err1 != nil || err2 != nil {
			return "", fmt.Errorf("netstack: bad IPv6 from the parent: %q via %q", g6, msg.NetworkDriverOpaque[opaqueGateway6])
		}
		if err := configureIPv6(msg.Dev, guest, gw); err != nil {
			return "", err
		}
	}
	if err := sendFD(sock, f); err != nil {
		return "", err
	}
	return msg.Dev, nil
}

// disableIPv6 turns IPv6 off in the namespace, whose cluster is IPv4 only
// (where the host has IPv6, configureIPv6 turns it on for the TAP alone):
// kube-proxy, which reads `all`, runs one proxier, not an idle IPv6 one
// that cost ~45 ip6tables runs at every start. Pods have network
// namespaces of their own and keep theirs. Best effort: where /proc/sys is
// read-only, IPv6 stays on and nothing else changes.
func disableIPv6() {
	for _, conf := range []string{"all", "default"} {
		os.WriteFile("/proc/sys/net/ipv6/conf/"+conf+"/disable_ipv6", []byte("1\n"), 0o644)
	}
}

// ChildDriverInfo implements network.ChildDriver.
func (ChildDriver) ChildDriverInfo() (*network.ChildDriverInfo, error) {
	return &network.ChildDriverInfo{ConfiguresInterface: false}, nil
}
