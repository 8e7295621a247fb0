package netstack

import (
	"slices"
	"testing"
)

func TestLocalCongestionReplacesPacingOnly(t *testing.T) {
	for inherited, want := range map[string][]string{
		"bbr":   {"cubic", "reno"},
		"bbr3":  {"cubic", "reno"},
		"cubic": nil,
		"reno":  nil,
		"dctcp": nil,
	} {
		if got := localCongestion(inherited); !slices.Equal(got, want) {
			t.Errorf("localCongestion(%q) = %q, want %q", inherited, got, want)
		}
	}
}

func TestPodCongestionFollowsTheNamespaceOnlyWhereTheHostPaces(t *testing.T) {
	for _, c := range []struct{ host, inside, want string }{
		{"bbr", "reno", "reno"},
		{"bbr", "cubic", "cubic"},
		{"bbr", "bbr", ""}, // the namespace could not change it: pods can't either
		{"cubic", "cubic", ""},
		{"dctcp", "dctcp", ""},
	} {
		if got := PodCongestion(c.host, c.inside); got != c.want {
			t.Errorf("PodCongestion(%q, %q) = %q, want %q", c.host, c.inside, got, c.want)
		}
	}
}
