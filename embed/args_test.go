package embed

import (
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, got []string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	text := strings.Join(got, "\n") + "\n"
	if *update {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update once)", err)
	}
	if string(want) != text {
		t.Fatalf("%s differs from the golden file:\n--- got\n%s--- want\n%s", name, text, want)
	}
}

func testConfig() Config {
	return DefaultConfig("default", "/data", "/state", net.ParseIP("10.0.2.100"), nil)
}

func TestFlagGoldens(t *testing.T) {
	c := testConfig()
	golden(t, "apiserver", FlagList(apiserverFlags(c, "/data/pki"), nil))
	golden(t, "controller-manager", FlagList(controllerManagerFlags(c, "/data/pki", "/state/cm.kubeconfig"), nil))
	golden(t, "scheduler", FlagList(schedulerFlags("/state/scheduler.kubeconfig"), nil))
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
