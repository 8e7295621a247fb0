package netstack

import (
	"fmt"
	"os"
	"strings"
)

const tcpCongestionSysctl = "/proc/sys/net/ipv4/tcp_congestion_control"

// localCongestion lists the congestion controls to try, best first, for
// TCP that never leaves this machine, given the default the namespace
// inherited from the host; none when that default is fine.
//
// Every TCP connection of the namespace ends on this machine: on its
// loopback (forwarded ports, the control plane), at the NAT's gVisor
// stack across the TAP, or in a pod. The internet hop is the host's own
// socket, which the NAT opens with the host's congestion control. BBR,
// without the fq qdisc, paces in the kernel with a timer per burst; on
// these local hops that costs a quarter to a third of the throughput
// (`unetes forward` 0.6-0.7x -> 0.8-0.9x host loopback, NAT upload +35% on
// the development host). Cubic and Reno do not pace; a namespace may pick
// Reno, and Cubic where net.ipv4.tcp_allowed_congestion_control lists it.
func localCongestion(inherited string) []string {
	if !Paces(inherited) {
		return nil
	}
	return []string{"cubic", "reno"}
}

// Paces reports whether congestion control cc paces in the kernel, with a
// timer per burst, where no fq qdisc does it (BBR).
func Paces(cc string) bool { return strings.HasPrefix(cc, "bbr") }

// PodCongestion is the congestion control to give the network namespaces
// made inside (pods'), which start with the host's default, not the
// namespace's: the namespace's own (inside) where the host's paces and
// that one does not; empty where pods can keep the host's.
func PodCongestion(host, inside string) string {
	if !Paces(host) || Paces(inside) {
		return ""
	}
	return inside
}

// Congestion is the default TCP congestion control of the caller's
// network namespace.
func Congestion() (string, error) {
	b, err := os.ReadFile(tcpCongestionSysctl)
	if err != nil {
		return "", fmt.Errorf("tcp congestion control: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// setLocalCongestion applies localCongestion to the namespace's default.
func setLocalCongestion() error {
	cur, err := Congestion()
	if err != nil {
		return err
	}
	var errs []string
	for _, cc := range localCongestion(cur) {
		if err := os.WriteFile(tcpCongestionSysctl, []byte(cc), 0o644); err != nil {
			errs = append(errs, cc+": "+err.Error())
			continue
		}
		return nil
	}
	if len(errs) > 0 {
		return fmt.Errorf("tcp congestion control stays %s (it paces every local hop): %s", cur, strings.Join(errs, "; "))
	}
	return nil
}
