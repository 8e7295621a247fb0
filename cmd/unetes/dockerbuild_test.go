package main

import (
	"strings"
	"testing"

	"github.com/unetes/unetes/nsinit"
)

func TestChooseBuilder(t *testing.T) {
	debian := dockerCLI{Path: "/usr/bin/docker", Version: "20.10.24+dfsg1"}
	bare := dockerCLI{Path: "/usr/local/bin/docker", Version: "28.2.2"}
	buildx := dockerCLI{Path: "/usr/local/bin/docker", Version: "28.2.2", Buildx: true}
	for _, tc := range []struct {
		name         string
		cli          dockerCLI
		value        string
		set          bool
		builder, env string
		err          string // part of the error; "" for none
	}{
		{name: "20.10 uses its own BuildKit client", cli: debian, builder: "BuildKit (built into the CLI)"},
		{name: "23+ with buildx", cli: buildx, builder: "BuildKit (buildx)"},
		{name: "23+ without buildx gets the legacy builder", cli: bare, builder: "legacy builder", env: "DOCKER_BUILDKIT=0"},
		{name: "an empty DOCKER_BUILDKIT is unset", cli: bare, set: true, builder: "legacy builder", env: "DOCKER_BUILDKIT=0"},
		{name: "the user's DOCKER_BUILDKIT=0 is kept", cli: buildx, value: "0", set: true, builder: "legacy builder"},
		{name: "the user's false is kept", cli: debian, value: "false", set: true, builder: "legacy builder"},
		{name: "DOCKER_BUILDKIT=1 on 20.10", cli: debian, value: "1", set: true, builder: "BuildKit (built into the CLI)"},
		{name: "DOCKER_BUILDKIT=1 with buildx", cli: buildx, value: "1", set: true, builder: "BuildKit (buildx)"},
		{name: "DOCKER_BUILDKIT=1 without buildx cannot build", cli: bare, value: "1", set: true,
			err: "DOCKER_BUILDKIT=1 asks for BuildKit, but the docker CLI at /usr/local/bin/docker (28.2.2) has no buildx plugin"},
		{name: "DOCKER_BUILDKIT not a boolean", cli: debian, value: "yes please", set: true, err: "is not a boolean"},
		{name: "unknown version: the CLI decides", cli: dockerCLI{Path: "/usr/bin/docker"}, builder: "the CLI's default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := chooseBuilder(tc.cli, tc.value, tc.set)
			if tc.err != "" {
				if c.Err == nil || !strings.Contains(c.Err.Error(), tc.err) {
					t.Fatalf("err %v, want one with %q", c.Err, tc.err)
				}
				if !strings.Contains(c.Err.Error(), "docker-buildx") && !strings.Contains(c.Err.Error(), "not a boolean") {
					t.Fatalf("the error names no fix: %v", c.Err)
				}
				return
			}
			if c.Err != nil || c.Builder != tc.builder || c.SetEnv != tc.env || c.Why == "" {
				t.Fatalf("got %+v, want builder %q env %q", c, tc.builder, tc.env)
			}
		})
	}
}

func TestParseCLIVersion(t *testing.T) {
	for in, want := range map[string]string{
		"Docker version 28.2.2, build e6534b4\n":         "28.2.2",
		"Docker version 20.10.24+dfsg1, build 297e128\n": "20.10.24+dfsg1",
		"podman version 4.3.1\n":                         "",
		"":                                               "",
	} {
		if got := parseCLIVersion(in); got != want {
			t.Errorf("parseCLIVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIsBuild(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"build", "-t", "app:1", "."}, true},
		{[]string{"image", "build", "."}, true},
		{[]string{"builder", "build", "."}, true},
		{[]string{"--context", "x", "build", "."}, true},
		{[]string{"-l=debug", "build", "."}, true},
		{[]string{"--debug", "image", "build", "."}, true},
		{[]string{"run", "--rm", "build"}, false},
		{[]string{"image", "ls"}, false},
		{[]string{"-H", "build", "ps"}, false},
		{[]string{"ps"}, false},
		{nil, false},
	} {
		if got := isBuild(tc.args); got != tc.want {
			t.Errorf("isBuild(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestComposeCheck(t *testing.T) {
	if c := composeCheck("/usr/bin/docker-compose", "1.29.2"); c.Level != nsinit.OK || !strings.Contains(c.Detail, "legacy builder") {
		t.Fatalf("compose 1.29: %+v", c)
	}
	if c := composeCheck("/usr/local/bin/docker-compose", "2.29.7"); !strings.Contains(c.Detail, "BuildKit") {
		t.Fatalf("compose 2: %+v", c)
	}
	if c := composeCheck("/x/docker-compose", ""); c.Level != nsinit.Info {
		t.Fatalf("unreadable compose: %+v", c)
	}
}

func TestSetEnvReplaces(t *testing.T) {
	got := setEnv([]string{"A=1", "DOCKER_HOST=unix:///other", "B=2"}, "DOCKER_HOST=unix:///mine")
	if strings.Join(got, " ") != "A=1 B=2 DOCKER_HOST=unix:///mine" {
		t.Fatalf("%q", got)
	}
}
