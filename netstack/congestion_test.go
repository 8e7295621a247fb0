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
