package nsinit

import (
	"slices"
	"strings"
	"testing"
)

func TestParseSubIDs(t *testing.T) {
	content := []byte("# comment\nalice:100000:65536\nbob:165536:65536\n1003:231072:1000\nalice:300000:10\n\n")
	for _, tc := range []struct {
		name  string
		user  string
		id    int
		want  []IDRange
		total int
	}{
		{"by name, two ranges", "alice", 1000, []IDRange{{100000, 65536}, {300000, 10}}, 65546},
		{"by numeric id", "carol", 1003, []IDRange{{231072, 1000}}, 1000},
		{"absent", "dave", 1004, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSubIDs(content, tc.user, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if n := TotalIDs(got, tc.id); n != tc.total {
				t.Fatalf("total %d, want %d", n, tc.total)
			}
		})
	}
	for _, bad := range []string{"alice:1", "alice:x:10", "alice:10:0", "alice:-5:10"} {
		if _, err := ParseSubIDs([]byte(bad), "alice", 1); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: err = %v, want a line-numbered error", bad, err)
		}
	}
}

func TestMapArgs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		own    int
		ranges []IDRange
		want   string
	}{
		{"plain", 1000, []IDRange{{100000, 65536}}, "0 1000 1 1 100000 65536"},
		{"two ranges follow each other", 1000, []IDRange{{100000, 10}, {200000, 5}}, "0 1000 1 1 100000 10 11 200000 5"},
		{"own id inside a range is cut out", 1005, []IDRange{{1000, 10}}, "0 1005 1 1 1000 5 6 1006 4"},
		{"own id at range start", 1000, []IDRange{{1000, 3}}, "0 1000 1 1 1001 2"},
		{"no ranges", 1000, nil, "0 1000 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(MapArgs(tc.own, tc.ranges), " "); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestResolvePaths(t *testing.T) {
	for _, tc := range []struct {
		name    string
		inst    string
		env     Env
		want    Paths
		wantErr string
	}{
		{"no XDG at all", "default", Env{UID: 1000, Home: "/home/a"},
			Paths{"/tmp/unetes-1000/default", "/home/a/.local/share/unetes/default", "/home/a/.config/unetes/default"}, ""},
		{"XDG everywhere", "dev", Env{UID: 1000, Home: "/home/a", XDGRuntimeDir: "/run/user/1000", XDGDataHome: "/d", XDGConfigHome: "/c"},
			Paths{"/run/user/1000/unetes/dev", "/d/unetes/dev", "/c/unetes/dev"}, ""},
		{"bad name", "../x", Env{UID: 1, Home: "/h"}, Paths{}, "invalid instance name"},
		{"relative runtime dir", "a", Env{UID: 1, Home: "/h", XDGRuntimeDir: "run"}, Paths{}, "XDG_RUNTIME_DIR"},
		{"no home", "a", Env{UID: 1}, Paths{}, "HOME is unset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolvePaths(tc.inst, tc.env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
