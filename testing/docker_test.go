package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The stock clients of Debian 12 (docker.io's CLI speaks API 1.41,
// docker-compose 1.29 asks for 1.38): what users of this host run. (The
// test image's wget, busybox-static's, crashes with -T: no timeouts here.)
const (
	dockerCLI     = "/usr/bin/docker"
	dockerCompose = "/usr/bin/docker-compose"
)

// docker runs the docker CLI as the instance's user against its Docker API
// (DOCKER_HOST from `unetes docker-env`).
func (in *instance) docker(args ...string) (stdout, stderr string, code int) {
	in.t.Helper()
	return in.dockerTool(dockerCLI, "", args...)
}

func (in *instance) mustDocker(args ...string) string {
	in.t.Helper()
	out, errOut, code := in.docker(args...)
	if code != 0 {
		in.t.Fatalf("docker %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// dockerTool runs tool (docker or docker-compose) in dir with DOCKER_HOST.
func (in *instance) dockerTool(tool, dir string, args ...string) (stdout, stderr string, code int) {
	in.t.Helper()
	return in.dockerToolEnv(tool, dir, nil, args...)
}

// dockerToolEnv is dockerTool with more environment variables.
func (in *instance) dockerToolEnv(tool, dir string, env []string, args ...string) (stdout, stderr string, code int) {
	in.t.Helper()
	if _, err := os.Stat(tool); err != nil {
		in.t.Fatalf("%v (make test installs docker.io and docker-compose)", err)
	}
	cmd := in.u.command(tool, args...)
	cmd.Env = append(append(cmd.Env, "DOCKER_HOST="+in.dockerHost()), env...)
	if dir != "" {
		cmd.Dir = dir
	}
	return runFor(in.t, cmd, 3*time.Minute)
}

// dockerHost is the DOCKER_HOST that `unetes docker-env` exports.
func (in *instance) dockerHost() string {
	in.t.Helper()
	env, errOut, c := in.u.unetes(in.t, "", "docker-env", "--name", in.name)
	for _, line := range strings.Split(env, "\n") {
		if host, ok := strings.CutPrefix(line, "export DOCKER_HOST="); ok && c == 0 {
			return host
		}
	}
	in.t.Fatalf("unetes docker-env: exit %d, %q %q", c, env, errOut)
	return ""
}

// userDir makes a directory owned by u with files in it.
func userDir(t *testing.T, u *testUser, files map[string]string) string {
	t.Helper()
	dir, err := os.MkdirTemp(work.dir, "docker-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	chownTree(t, dir, u)
	return dir
}

// dockerdProcs lists u's dockerd processes.
func dockerdProcs(uid int) []int { return procsOf(uid, "dockerd --config-file") }

// serveCmd serves what file says over HTTP on port 80 of a container.
func serveCmd(text string) []string {
	return []string{"sh", "-c", "mkdir -p /www && echo " + text + " > /www/index.html && exec httpd -f -p 80 -h /www"}
}

func servesText(t *testing.T, port int, want string) {
	t.Helper()
	waitFor(t, 2*time.Minute, fmt.Sprintf("%q on 127.0.0.1:%d", want, port), func() bool {
		out, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", port))
		return err == nil && out == want
	})
}

func TestDockerEngineBesideKubernetes(t *testing.T) {
	u := asUser(t, *flagTestUser)
	name := newName()
	in, apiPort := startKube(t, u, name)
	if !strings.Contains(in.out.String(), "docker-env --name "+name) {
		t.Fatalf("run does not say how to reach the Docker API:\n%s", in.out.String())
	}
	sock := filepath.Join(in.stateDir(), "docker.sock")
	if fi, err := os.Stat(sock); err != nil {
		t.Fatal(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Fatalf("docker.sock has mode %v, want 0600", fi.Mode().Perm())
	}

	// The stock CLI and its API version; `unetes image load` images are docker's.
	if v := in.mustDocker("version", "--format", "{{.Client.APIVersion}} {{.Server.MinAPIVersion}}"); !strings.HasPrefix(v, "1.41 ") {
		t.Fatalf("docker version: %q", v)
	}
	if info := in.mustDocker("info", "--format", "{{.SecurityOptions}} {{.Driver}}"); !strings.Contains(info, "rootless") {
		t.Fatalf("docker info: not rootless: %q", info)
	}
	if imgs := in.mustDocker("images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(imgs, testImage) {
		t.Fatalf("the image loaded for pods is not in docker images:\n%s", imgs)
	}
	if out := in.mustDocker("run", "--rm", testImage, "id", "-u"); strings.TrimSpace(out) != "0" {
		t.Fatalf("id -u in a container: %q", out)
	}
	host := hostHTTPServer(t, hostIP(t).String()+":0")
	if out := in.mustDocker("run", "--rm", testImage, "wget", "-qO-", "http://"+host+"/"); strings.TrimSpace(out) != "host-says-hi" {
		t.Fatalf("a container to the host through the NAT: %q", out)
	}

	// -p publishes on the host's 127.0.0.1 (only), listed as docker's;
	// removing the container closes it.
	p := freePort(t, "tcp")
	in.mustDocker(append([]string{"run", "-d", "--name", "web", "-p", fmt.Sprintf("%d:80", p), testImage}, serveCmd("hello-from-docker")...)...)
	servesText(t, p, "hello-from-docker")
	if l, _, _ := in.forward("--list"); !regexpLine(l, fmt.Sprintf(`^127\.0\.0\.1\s+%d\s+%d\s+tcp\s+docker\s`, p, p)) {
		t.Fatalf("forward --list does not show docker's port %d:\n%s", p, l)
	}
	if _, errOut, code := in.forward("--remove", fmt.Sprintf("127.0.0.1:%d", p)); code == 0 || !strings.Contains(errOut, "docker") {
		t.Fatalf("forward --remove of docker's port: exit %d, %q", code, errOut)
	}
	if _, err := httpGet(fmt.Sprintf("http://%s:%d/", hostIP(t), p)); err == nil {
		t.Fatalf("-p %d:80 answered on the host's address, not only on 127.0.0.1", p)
	}
	in.mustDocker("rm", "-f", "web")
	waitFor(t, 30*time.Second, fmt.Sprintf("port %d closed after docker rm", p), func() bool {
		_, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", p))
		return err != nil
	})

	// docker build (RUN and COPY), run the result, then a pod runs that
	// same image with no load step.
	ctx := userDir(t, u, map[string]string{
		"Dockerfile":   "FROM " + testImage + "\nRUN echo built-by-run > /built.txt\nCOPY greeting.txt /greeting.txt\nCMD [\"cat\", \"/built.txt\", \"/greeting.txt\"]\n",
		"greeting.txt": "copied-by-copy\n",
	})
	const app = "localhost/e2e-app:1"
	in.mustDocker("build", "-t", app, ctx)
	if out := in.mustDocker("run", "--rm", app); out != "built-by-run\ncopied-by-copy\n" {
		t.Fatalf("the built image printed %q", out)
	}
	if _, errOut, code := in.apply(`apiVersion: v1
kind: Pod
metadata: {name: built}
spec:
  restartPolicy: Never
  containers: [{name: c, image: ` + app + `, imagePullPolicy: Never}]
`); code != 0 {
		t.Fatalf("apply: %s", errOut)
	}
	if out, errOut, code := in.kubectl("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/built", "--timeout=120s"); code != 0 {
		ev, _, _ := in.kubectl("describe", "pod", "built")
		t.Fatalf("the pod of the docker-built image did not succeed: %s %s\n%s", out, errOut, ev)
	}
	if logs := in.mustKubectl("logs", "built"); logs != "built-by-run\ncopied-by-copy\n" {
		t.Fatalf("the pod of the docker-built image printed %q", logs)
	}
	checkBuilders(t, in, u)
	// Images by name only (not the CRI's sha256:<id> records), and what
	// docker built or `unetes image load` brought is pinned: the kubelet's
	// image GC leaves it to docker.
	if repos := in.mustDocker("images", "--format", "{{.Repository}}"); regexpLine(repos, `^sha256$`) {
		t.Fatalf("docker images lists the CRI's image-ID records:\n%s", repos)
	}
	checkPinned(t, in, true, app, testImage)

	// docker-compose: two services that talk by name, then down.
	proj := userDir(t, u, map[string]string{"docker-compose.yml": `version: "3.8"
services:
  web:
    image: ` + testImage + `
    command: ["sh", "-c", "mkdir -p /www && echo from-web > /www/index.html && exec httpd -f -p 80 -h /www"]
  client:
    image: ` + testImage + `
    command: ["sh", "-c", "until wget -qO- http://web/; do sleep 0.2; done; exec sleep 3600"]
    depends_on: [web]
`})
	if out, errOut, code := in.dockerTool(dockerCompose, proj, "-p", "e2e", "up", "-d"); code != 0 {
		t.Fatalf("docker-compose up: %d\n%s\n%s", code, out, errOut)
	}
	waitFor(t, time.Minute, "the compose client reaching web by name", func() bool {
		out, _, _ := in.dockerTool(dockerCompose, proj, "-p", "e2e", "logs", "client")
		return strings.Contains(out, "from-web")
	})
	if out, errOut, code := in.dockerTool(dockerCompose, proj, "-p", "e2e", "down"); code != 0 {
		t.Fatalf("docker-compose down: %d\n%s\n%s", code, out, errOut)
	}
	if ps := in.mustDocker("ps", "-a", "--format", "{{.Names}}"); strings.Contains(ps, "e2e_") {
		t.Fatalf("containers left after docker-compose down:\n%s", ps)
	}
	if nets := in.mustDocker("network", "ls", "--format", "{{.Name}}"); strings.Contains(nets, "e2e_default") {
		t.Fatalf("network left after docker-compose down:\n%s", nets)
	}

	// A restarting container with a named volume and a published port;
	// each side's tools see only their own containers.
	q := freePort(t, "tcp")
	in.mustDocker("run", "--rm", "-v", "keepvol:/www", testImage, "sh", "-c", "echo kept-in-volume > /www/index.html")
	in.mustDocker("run", "-d", "--restart", "always", "--name", "keep", "-p", fmt.Sprintf("%d:80", q), "-v", "keepvol:/www", testImage, "httpd", "-f", "-p", "80", "-h", "/www")
	servesText(t, q, "kept-in-volume")
	if ps := in.mustDocker("ps", "-a", "--format", "{{.Names}}"); strings.TrimSpace(ps) != "keep" {
		t.Fatalf("docker ps lists more than docker's container (pods?):\n%s", ps)
	}
	if pods := in.mustKubectl("get", "pods", "-A", "-o", "name"); strings.Contains(pods, "keep") {
		t.Fatalf("kubectl lists docker's container:\n%s", pods)
	}

	in.stop()
	if left := append(dockerdProcs(u.uid), containerProcs(u.uid)...); len(left) > 0 {
		t.Fatalf("processes left after stop:\n%s", describe(left))
	}
	again := launch(t, u, name, []string{"--api-port", strconv.Itoa(apiPort)})
	servesText(t, q, "kept-in-volume")
	if ps := again.mustDocker("ps", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(ps, "keep Up") {
		t.Fatalf("the --restart always container after stop/run: %q", ps)
	}
	if out := again.mustKubectl("get", "pod", "built", "-o", "jsonpath={.status.phase}"); out != "Succeeded" {
		t.Fatalf("the pod after stop/run: %q", out)
	}

	checkImageInUse(t, again, app, "default/built")

	// SIGKILL of run: nothing is left, dockerd and containers included.
	if err := again.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-again.done
	waitFor(t, 15*time.Second, "no process of the instance", func() bool {
		return len(procsOf(u.uid, name)) == 0 && len(dockerdProcs(u.uid)) == 0 && len(containerProcs(u.uid)) == 0
	})
}

// Docker alone (no Kubernetes), like Usernetes' `run.sh dockerd`, and
// --disable docker.
func TestDockerWithoutKubernetesAndDisabled(t *testing.T) {
	u := asUser(t, *flagTestUser)
	name := newName()
	in := startInstanceNamed(t, u, name)
	tarball := dockerSaveImage(t, testImage)
	if out, errOut, code := in.docker("load", "-i", tarball); code != 0 {
		t.Fatalf("docker load: %d %s %s", code, out, errOut)
	}
	if out := in.mustDocker("run", "--rm", testImage, "echo", "docker-only"); out != "docker-only\n" {
		t.Fatalf("docker run without Kubernetes: %q", out)
	}
	checkDockerLimitsRefused(t, in)
	st, _, _ := u.unetes(t, "", "status", "--name", name)
	if !regexpLine(st, `^\s+docker\s+ready`) {
		t.Fatalf("status does not list docker as ready:\n%s", st)
	}
	if l, _, code := u.unetes(t, "", "logs", "--name", name, "docker"); code != 0 || !strings.Contains(l, "API listen on") {
		t.Fatalf("unetes logs docker: %d\n%s", code, l)
	}

	// dockerd killed: the sandbox starts it again, and its running
	// containers (with no restart policy here) run on through it
	// (live-restore): the same process, serving on its published port again.
	p := freePort(t, "tcp")
	in.mustDocker(append([]string{"run", "-d", "--name", "outlives", "-p", fmt.Sprintf("%d:80", p), testImage}, serveCmd("outlived-dockerd")...)...)
	in.mustDocker("run", "-d", "--name", "graceful", "-v", "gracevol:/data", testImage,
		"sh", "-c", "trap 'echo got-term > /data/term; exit 0' TERM; while :; do sleep 0.2; done")
	servesText(t, p, "outlived-dockerd")
	const state = "{{.State.Status}} {{.State.Pid}} {{.State.StartedAt}}"
	before := in.mustDocker("inspect", "-f", state, "outlives")
	pids := dockerdProcs(u.uid)
	if len(pids) != 1 {
		t.Fatalf("want one dockerd, got:\n%s", describe(pids))
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a new dockerd", func() bool {
		now := dockerdProcs(u.uid)
		return len(now) == 1 && now[0] != pids[0]
	})
	waitFor(t, time.Minute, "docker ready again", func() bool {
		st, _, _ := u.unetes(t, "", "status", "--name", name)
		return regexpLine(st, `^\s+docker\s+ready`)
	})
	servesText(t, p, "outlived-dockerd")
	if after := in.mustDocker("inspect", "-f", state, "outlives"); after != before || !strings.HasPrefix(before, "running ") {
		t.Fatalf("the container through dockerd's restart: %q, then %q", before, after)
	}
	if l, _, _ := in.forward("--list"); strings.Count(l, fmt.Sprintf(" %d ", p)) != 2 { // host port and target port, once
		t.Fatalf("docker's port %d after dockerd's restart:\n%s", p, l)
	}

	// `unetes stop` stops docker's containers as a host's shutdown does
	// (SIGTERM, then dockerd's shutdown-timeout), live-restore or not.
	in.stop()
	term := filepath.Join(in.u.home, ".local", "share", "unetes", name, "docker", "volumes", "gracevol", "_data", "term")
	if b, err := os.ReadFile(term); err != nil || string(b) != "got-term\n" {
		t.Fatalf("the container was not stopped with SIGTERM at unetes stop: %q %v", b, err)
	}

	off := startInstanceNamed(t, u, name, "--disable", "docker")
	if _, err := os.Stat(filepath.Join(off.stateDir(), "docker.sock")); !os.IsNotExist(err) {
		t.Fatalf("docker.sock with --disable docker: %v", err)
	}
	if p := dockerdProcs(u.uid); len(p) > 0 {
		t.Fatalf("dockerd runs with --disable docker:\n%s", describe(p))
	}
	if out, errOut, code := u.unetes(t, "", "docker-env", "--name", name); code == 0 || !strings.Contains(errOut, "--disable docker") {
		t.Fatalf("docker-env with --disable docker: exit %d, %q %q", code, out, errOut)
	}
	if st, _, _ := u.unetes(t, "", "status", "--name", name); !regexpLine(st, `^\s+docker\s+disabled \(--disable docker\)`) {
		t.Fatalf("status does not say docker is disabled:\n%s", st)
	}
	if _, errOut, code := u.unetes(t, "", "run", "--name", newName(), "--no-kubernetes", "--disable", "dokker"); code == 0 || !strings.Contains(errOut, `no add-on "dokker"`) || !strings.Contains(errOut, "or docker") {
		t.Fatalf("run --disable dokker: exit %d, %q", code, errOut)
	}
}

// checkImageInUse: docker can neither remove nor prune image while pod (ns/name)
// has a container of it, nor the pause image; once the pod is gone, docker
// rmi removes it.
func checkImageInUse(t *testing.T, in *instance, image, pod string) {
	t.Helper()
	if out, errOut, code := in.docker("rmi", image); code == 0 || !strings.Contains(errOut, "used by pod "+pod) || !strings.Contains(errOut, "delete the pod first") {
		t.Fatalf("docker rmi of the image pod %s runs: exit %d\n%s%s", pod, code, out, errOut)
	}
	in.docker("image", "prune", "-a", "-f")
	if imgs := in.mustDocker("images", "--format", "{{.Repository}}:{{.Tag}}"); !regexpLine(imgs, "^"+regexp.QuoteMeta(image)+"$") || !strings.Contains(imgs, "unetes/pause") {
		t.Fatalf("docker image prune -a removed the image a pod runs or the pause image:\n%s", imgs)
	}
	ns, name, _ := strings.Cut(pod, "/")
	in.mustKubectl("delete", "pod", "-n", ns, name, "--wait=true")
	var last string
	waitFor(t, 3*time.Minute, "docker rmi once the pod is deleted (the kubelet removes its containers)", func() bool {
		out, errOut, code := in.docker("rmi", image)
		last = out + errOut
		return code == 0
	})
	if imgs := in.mustDocker("images", "--format", "{{.Repository}}:{{.Tag}}"); regexpLine(imgs, "^"+regexp.QuoteMeta(image)+"$") {
		t.Fatalf("%s still listed after docker rmi (%s):\n%s", image, last, imgs)
	}
}

// checkDockerLimitsRefused: docker cannot enforce container limits under
// unetes, so a container that asks for them is refused with a message
// naming the flags (the stock CLI prints the plugin's message), nothing is
// created, and a container without them runs; update is refused the same.
func checkDockerLimitsRefused(t *testing.T, in *instance) {
	t.Helper()
	_, errOut, code := in.docker("run", "--rm", "--name", "limited", "--memory", "32m", "--cpus", "0.5", testImage, "true")
	if code == 0 || !strings.Contains(errOut, "authorization denied by plugin unetes-limits: --cpus, --memory: unetes' Docker does not enforce") ||
		!strings.Contains(errOut, "run it without them") {
		t.Fatalf("docker run --memory --cpus: exit %d, want a refusal naming the flags:\n%s", code, errOut)
	}
	if out, _, _ := in.docker("ps", "-a", "--filter", "name=limited", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("a refused container was created: %q", out)
	}
	in.mustDocker("run", "-d", "--name", "unlimited", "--pids-limit", "-1", testImage, "sleep", "600")
	_, errOut, code = in.docker("update", "--pids-limit", "50", "unlimited")
	if code == 0 || !strings.Contains(errOut, "unetes-limits: --pids-limit:") {
		t.Fatalf("docker update --pids-limit: exit %d, want a refusal:\n%s", code, errOut)
	}
	in.mustDocker("rm", "-f", "unlimited")
}
