package embed

import (
	"encoding/json"
	"testing"
)

func TestOverlayNetConf(t *testing.T) {
	s, err := overlayNetConf("10.88.0.0/16", 65520)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Network string
		Backend struct {
			Type           string
			VNI, Port, MTU int
		}
	}
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		t.Fatalf("%v\n%s", err, s)
	}
	if c.Network != "10.88.0.0/16" || c.Backend.Type != "vxlan" || c.Backend.VNI != 1 || c.Backend.Port != OverlayPort || c.Backend.MTU != 65520-VXLANOverhead {
		t.Errorf("net-conf.json: %s", s)
	}
	for _, bad := range []struct {
		cidr string
		mtu  int
	}{{"fd00::/64", 65520}, {"nonsense", 65520}, {"10.88.0.0/16", 600}} {
		if _, err := overlayNetConf(bad.cidr, bad.mtu); err == nil {
			t.Errorf("overlayNetConf(%q, %d) = nil error", bad.cidr, bad.mtu)
		}
	}
}

func TestPodGateway(t *testing.T) {
	if gw, err := PodGateway("10.88.3.0/24"); err != nil || gw.String() != "10.88.3.1" {
		t.Errorf("PodGateway(10.88.3.0/24) = %v, %v", gw, err)
	}
	if _, err := PodGateway("fd00::/64"); err == nil {
		t.Error("PodGateway of an IPv6 range = nil error")
	}
}
