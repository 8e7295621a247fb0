package embed

import (
	"strings"
	"testing"
)

func TestMasqueradeRules(t *testing.T) {
	for _, mode := range []string{"iptables", "nftables"} {
		r, err := masqueradeRules(mode, "10.88.0.0/24")
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		for _, want := range []string{"10.88.0.0/24", "224.0.0.0/4", "MASQUERADE"} {
			if !strings.Contains(strings.ToUpper(r), want) {
				t.Errorf("%s rules lack %q:\n%s", mode, want, r)
			}
		}
	}
	if _, err := masqueradeRules("ipvs", "10.88.0.0/24"); err == nil {
		t.Error("masqueradeRules(ipvs) = nil error")
	}
}
