package main

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestResolveProxy(t *testing.T) {
	gw := netip.MustParseAddr("10.0.2.2")
	exempt := clusterExempt(netip.MustParsePrefix("10.0.2.100/24"), "10.88.0.0/16", "10.96.0.0/16", "cluster.local")
	const want = "localhost,127.0.0.1,::1,10.0.2.0/24,10.88.0.0/16,10.96.0.0/16,.svc,.cluster.local"
	for _, tc := range []struct {
		name      string
		env       []string
		loopback  bool
		wantEnv   []string
		wantNotes []string // parts of the notes, in order
	}{
		{name: "no proxy, nothing", env: []string{"HOME=/h", "NO_PROXY=corp.example"}},
		{name: "a proxy: the cluster bypasses it", env: []string{"HTTPS_PROXY=http://proxy.corp:3128"},
			wantEnv: []string{"NO_PROXY=" + want, "no_proxy=" + want}, wantNotes: []string{"proxy from HTTPS_PROXY"}},
		{name: "the user's NO_PROXY comes first, no duplicates", env: []string{"http_proxy=proxy:3128", "no_proxy=corp.example, 127.0.0.1"},
			wantEnv: []string{"NO_PROXY=corp.example,127.0.0.1,localhost,::1,10.0.2.0/24,10.88.0.0/16,10.96.0.0/16,.svc,.cluster.local",
				"no_proxy=corp.example,127.0.0.1,localhost,::1,10.0.2.0/24,10.88.0.0/16,10.96.0.0/16,.svc,.cluster.local"}},
		{name: "a loopback proxy is unreachable without --allow-host-loopback", env: []string{"HTTPS_PROXY=http://127.0.0.1:3128"},
			wantEnv: []string{"NO_PROXY=" + want, "no_proxy=" + want}, wantNotes: []string{"warning: HTTPS_PROXY http://127.0.0.1:3128 is on the host's loopback", "--allow-host-loopback", "proxy from"}},
		{name: "a loopback proxy through the gateway", env: []string{"HTTPS_PROXY=localhost:3128", "HTTP_PROXY=http://user:pw@127.0.0.1"}, loopback: true,
			wantEnv: []string{"HTTP_PROXY=http://user:pw@10.0.2.2", "HTTPS_PROXY=http://10.0.2.2:3128", "NO_PROXY=" + want, "no_proxy=" + want}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := resolveProxy(tc.env, exempt, gw, tc.loopback)
			if !slices.Equal(s.Env, tc.wantEnv) {
				t.Fatalf("env %q, want %q", s.Env, tc.wantEnv)
			}
			notes := strings.Join(s.Notes, "\n")
			for _, n := range tc.wantNotes {
				i := strings.Index(notes, n)
				if i < 0 {
					t.Fatalf("notes %q lack %q", notes, n)
				}
				notes = notes[i:]
			}
		})
	}
}
