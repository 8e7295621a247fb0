package embed

import (
	"strings"
	"testing"
)

func TestMasqueradeRules(t *testing.T) {
	// The node's range is masqueraded; the cluster's (other nodes' pods,
	// across the overlay) and multicast are not.
	for mode, wants := range map[string][]string{
		"iptables": {"-s 10.88.1.0/24 ", "-d 10.88.0.0/16 -j RETURN", "-d 224.0.0.0/4 -j RETURN", "-j MASQUERADE"},
		"nftables": {"ip saddr 10.88.1.0/24 ip daddr != 10.88.0.0/16 ip daddr != 224.0.0.0/4 masquerade"},
	} {
		r, err := masqueradeRules(mode, "10.88.1.0/24", "10.88.0.0/16")
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		for _, want := range wants {
			if !strings.Contains(r, want) {
				t.Errorf("%s rules lack %q:\n%s", mode, want, r)
			}
		}
	}
	if _, err := masqueradeRules("ipvs", "10.88.0.0/24", "10.88.0.0/16"); err == nil {
		t.Error("masqueradeRules(ipvs) = nil error")
	}
}
