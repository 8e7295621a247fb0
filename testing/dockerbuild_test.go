package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pathCLI is the docker CLI on the test user's PATH as the test reads it,
// apart from unetes' own reading: its path, major version and whether its
// buildx plugin answers.
type pathCLI struct {
	path   string
	major  int
	buildx bool
}

// legacyOnly says whether the CLI can build only with the legacy builder:
// from 23.0 on, BuildKit needs the buildx plugin.
func (c pathCLI) legacyOnly() bool { return c.major >= 23 && !c.buildx }

func readPathCLI(t *testing.T, u *testUser) pathCLI {
	t.Helper()
	which, _, code := runFor(t, u.command("sh", "-c", "command -v docker"), time.Minute)
	if code != 0 {
		t.Fatalf("no docker CLI on the test user's PATH (make test installs docker.io)")
	}
	c := pathCLI{path: strings.TrimSpace(which)}
	v, _, _ := runFor(t, u.command(c.path, "--version"), time.Minute)
	m := regexp.MustCompile(`^Docker version (\d+)\.`).FindStringSubmatch(v)
	if m == nil {
		t.Fatalf("%s --version: %q", c.path, v)
	}
	c.major, _ = strconv.Atoi(m[1])
	_, _, code = runFor(t, u.command(c.path, "buildx", "version"), time.Minute)
	c.buildx = code == 0
	return c
}

// checkBuilders builds one Dockerfile with every stock client a newcomer
// has, each with the builder it can use (the docker CLI on PATH through
// `unetes docker`, Debian's CLI with the legacy builder, docker-compose
// 1.29), and pods run the three images with no load step. Builds neither
// builder can run are refused with the fix.
func checkBuilders(t *testing.T, in *instance, u *testUser) {
	ctx := userDir(t, u, map[string]string{
		"Dockerfile": "FROM " + testImage + "\nARG WHO\nRUN echo built-by-$WHO > /built.txt\nCMD [\"cat\", \"/built.txt\"]\n",
		"docker-compose.yml": `version: "3.8"
services:
  app:
    build: {context: ., args: {WHO: compose}}
    image: localhost/e2e-composed:1
`,
	})
	cli := readPathCLI(t, u)
	t.Logf("docker CLI on PATH: %+v", cli)

	// What unetes says of that CLI: docker-env sets DOCKER_BUILDKIT=0 for
	// a buildx-less CLI from 23.0 on, and doctor names the builder.
	env, _, _ := in.u.unetes(t, "", "docker-env", "--name", in.name)
	if got := strings.Contains(env, "\nexport DOCKER_BUILDKIT=0\n"); got != cli.legacyOnly() {
		t.Fatalf("docker-env for %+v sets DOCKER_BUILDKIT=0: %v\n%s", cli, got, env)
	}
	doc, _, _ := u.unetes(t, "", "doctor")
	wantBuilder := "BuildKit"
	if cli.legacyOnly() {
		wantBuilder = "legacy builder"
	}
	if !regexpLine(doc, `docker build: `+regexp.QuoteMeta(cli.path)+` \S+: `+wantBuilder) ||
		!regexpLine(doc, `docker-compose build: /usr/bin/docker-compose 1\.29\.\d+: legacy builder`) {
		t.Fatalf("doctor does not say which builder %+v and docker-compose get (want %s):\n%s", cli, wantBuilder, doc)
	}

	// `unetes docker build`, with the builder that CLI can use.
	build := func(env []string, who string) (string, string, int) {
		cmd := u.command(work.unetes, "docker", "--name", in.name, "build", "--build-arg", "WHO="+who, "-t", "localhost/e2e-"+who+":1", ctx)
		cmd.Env = append(cmd.Env, env...)
		return runFor(t, cmd, 3*time.Minute)
	}
	out, errOut, code := build(nil, "path-cli")
	if code != 0 {
		t.Fatalf("unetes docker build with %+v: exit %d\n%s\n%s", cli, code, out, errOut)
	}
	if legacy := strings.Contains(out, "Step 1/"); legacy != cli.legacyOnly() {
		t.Fatalf("unetes docker build with %+v ran the legacy builder: %v\n%s\n%s", cli, legacy, out, errOut)
	}

	// Debian's CLI with the legacy builder, and docker-compose 1.29 (the
	// API's legacy builder).
	if out, errOut, code := in.dockerToolEnv(dockerCLI, "", []string{"DOCKER_BUILDKIT=0"}, "build", "--build-arg", "WHO=legacy", "-t", "localhost/e2e-legacy:1", ctx); code != 0 || !strings.Contains(out, "Step 1/") {
		t.Fatalf("docker build, legacy builder: exit %d\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code := in.dockerTool(dockerCompose, ctx, "-p", "e2ebuild", "build"); code != 0 {
		t.Fatalf("docker-compose build: exit %d\n%s\n%s", code, out, errOut)
	}

	// Builds no builder can run are refused before the CLI runs, with the fix.
	if _, errOut, code := build([]string{"DOCKER_BUILDKIT=sometimes"}, "refused"); code != 1 || !strings.Contains(errOut, "DOCKER_BUILDKIT=0 (legacy builder) or 1 (BuildKit)") {
		t.Fatalf("DOCKER_BUILDKIT=sometimes: exit %d, %q", code, errOut)
	}
	if cli.legacyOnly() {
		if _, errOut, code := build([]string{"DOCKER_BUILDKIT=1"}, "refused"); code != 1 || !strings.Contains(errOut, "has no buildx plugin") || !strings.Contains(errOut, "unset DOCKER_BUILDKIT") {
			t.Fatalf("DOCKER_BUILDKIT=1 with %+v: exit %d, %q", cli, code, errOut)
		}
	}
	if imgs := in.mustDocker("images", "--format", "{{.Repository}}"); strings.Contains(imgs, "e2e-refused") {
		t.Fatalf("a refused build left an image:\n%s", imgs)
	}

	// Pods run all three, no load step.
	built := map[string]string{"path-cli": "built-by-path-cli", "legacy": "built-by-legacy", "composed": "built-by-compose"}
	var pods strings.Builder
	for img := range built {
		fmt.Fprintf(&pods, `---
apiVersion: v1
kind: Pod
metadata: {name: built-%s}
spec:
  restartPolicy: Never
  containers: [{name: c, image: localhost/e2e-%s:1, imagePullPolicy: Never}]
`, img, img)
		t.Cleanup(func() { in.kubectl("delete", "pod", "built-"+img, "--wait=false") })
	}
	if _, errOut, code := in.apply(pods.String()); code != 0 {
		t.Fatalf("apply: %s", errOut)
	}
	for img, want := range built {
		if out, errOut, code := in.kubectl("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/built-"+img, "--timeout=120s"); code != 0 {
			ev, _, _ := in.kubectl("describe", "pod", "built-"+img)
			t.Fatalf("the pod of the image %s built did not succeed: %s %s\n%s", img, out, errOut, ev)
		}
		if logs := in.mustKubectl("logs", "built-"+img); logs != want+"\n" {
			t.Fatalf("the pod of the image %s built printed %q, want %q", img, logs, want)
		}
	}
}
