package embed

import (
	"net"
	"strings"
	"testing"

	goldenfile "github.com/unetes/unetes/embed/internal/golden"
)

func golden(t *testing.T, name string, got []string) {
	t.Helper()
	goldenfile.Check(t, name, strings.Join(got, "\n")+"\n")
}

func testConfig() Config {
	return DefaultConfig("default", "/data", "/state", net.ParseIP("10.0.2.100"), nil)
}

func TestFlagGoldens(t *testing.T) {
	c := testConfig()
	golden(t, "apiserver", FlagList(apiserverFlags(c, "/data/pki"), nil))
	golden(t, "controller-manager", FlagList(controllerManagerFlags(c, "/data/pki", "/state/cm.kubeconfig"), nil))
	golden(t, "scheduler", FlagList(schedulerFlags("/data/pki", "/state/scheduler.kubeconfig"), nil))
}

func TestFlagListExtraWins(t *testing.T) {
	got := FlagList(map[string]string{"b": "1", "a": "2"}, map[string]string{"b": "3", "c": "4"})
	if strings.Join(got, " ") != "--a=2 --b=3 --c=4" {
		t.Fatalf("got %v", got)
	}
}

func TestServiceIP(t *testing.T) {
	c := testConfig()
	ip, err := c.ServiceIP()
	if err != nil || ip.String() != "10.96.0.1" {
		t.Fatalf("got %v %v", ip, err)
	}
	c.ServiceCIDR = "bogus"
	if _, err := c.ServiceIP(); err == nil {
		t.Fatal("want error")
	}
}
