package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/unetes/unetes/testing/internal/testimage"
)

// dockerCLI is Debian's docker CLI (docker.io): what users of this host run.
const dockerCLI = "/usr/bin/docker"

// dockerRepeats is how many times each docker latency is taken (median).
const dockerRepeats = 5

// dockerTable measures the Docker Engine API (dockerd on the instance's
// containerd): run -> ready with and without it, idle memory with and
// without it (and dockerd's own), `docker run --rm` beside `unetes ctr
// run --rm` of the same image, and `docker build` of a small Dockerfile.
func (b *bench) dockerTable() {
	fmt.Printf("\nDocker Engine API (dockerd on the instance's containerd), same run\n\n")
	bin := b.home + "/unetes"
	stamp := time.Now().UnixNano() % 100000
	inst := fmt.Sprintf("benchdocker-%d", stamp)
	port := b.nextPort
	b.nextPort++
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	defer w.Flush()
	fmt.Fprintln(w, "figure\tunetes\ttarget\treference")
	if _, err := os.Stat(dockerCLI); err != nil {
		fmt.Fprintf(w, "docker\tfailed: %s missing: apt-get install docker.io (make bench installs it)\t\t\n", dockerCLI)
		return
	}
	// Cold starts of Kubernetes with and without docker, interleaved.
	var off, on coldRuns
	for i := 0; i < *flagRuns; i++ {
		off.add(b.timeToReady(bin, inst, port, false, "--disable", "docker"), instanceMemory(inst))
		b.stopAndReset(bin, inst)
		on.add(b.timeToReady(bin, inst, port, false), instanceMemory(inst))
		b.stopAndReset(bin, inst)
	}
	fmt.Fprintf(w, "run -> ready, cold, Kubernetes, --disable docker / docker on (median of %d)\t%s / %s\t\t\n", *flagRuns, off.ready(), on.ready())
	fmt.Fprintf(w, "idle memory, Kubernetes, --disable docker / docker on, PSS (median)\t%s / %s\t\t\n", off.pss(""), on.pss(""))
	fmt.Fprintf(w, "  dockerd, PSS (median)\t%s\t<= 60 MB\t\n", on.pss(dockerdRole))

	// Docker alone (--no-kubernetes, like Usernetes' `run.sh dockerd`).
	rt := b.timeToReady(bin, inst, port, false, "--no-kubernetes")
	defer b.stopAndReset(bin, inst)
	fmt.Fprintf(w, "run -> ready, cold, --no-kubernetes (containerd + dockerd)\t%s\t\t\n", secs(rt.node, rt.err))
	if rt.err != nil {
		return
	}
	mem := instanceMemory(inst)
	fmt.Fprintf(w, "idle memory, --no-kubernetes with docker, PSS\t%.0f MB (dockerd %.0f MB)\t\t\n", mem.pss, mem.byRole[dockerdRole][1])
	host, err := b.dockerHost(bin, inst)
	if err != nil {
		fmt.Fprintf(w, "docker\tfailed: %v\t\t\n", err)
		return
	}
	const image = "localhost/busybox:bench"
	if err := b.dockerLoad(host, image); err != nil {
		fmt.Fprintf(w, "docker load\tfailed: %v\t\t\n", err)
		return
	}
	dockerRun := b.medianTime(func() error {
		return b.run(b.dockerCmd(host, "run", "--rm", image, "id"))
	})
	n := 0
	ctrRun := b.medianTime(func() error {
		n++
		return b.run(b.asUser(exec.Command(bin, "ctr", "--name", inst, "-n", "k8s.io", "run", "--rm", image, fmt.Sprintf("bench-%d", n), "id")))
	})
	fmt.Fprintf(w, "docker run --rm IMAGE id (median of %d)\t%s\t\tunetes ctr run --rm, same image: %s\n", dockerRepeats, dockerRun, ctrRun)
	ctx, err := b.buildContext(image)
	if err != nil {
		fmt.Fprintf(w, "docker build\tfailed: %v\t\t\n", err)
		return
	}
	build := b.medianTime(func() error {
		return b.run(b.dockerCmd(host, "build", "--no-cache", "-q", "-t", "localhost/bench-built:1", ctx))
	})
	fmt.Fprintf(w, "docker build --no-cache, FROM + RUN + COPY (median of %d)\t%s\t\t\n", dockerRepeats, build)
	if fi, err := os.Stat(bin); err == nil {
		fmt.Fprintf(w, "binary size, with dockerd embedded\t%.0f MB\t\t\n", float64(fi.Size())/1e6)
	}
}

const dockerdRole = "dockerd"

// dockerHost is the instance's DOCKER_HOST, from `unetes docker-env`.
func (b *bench) dockerHost(bin, inst string) (string, error) {
	out, err := b.asUser(exec.Command(bin, "docker-env", "--name", inst)).Output()
	if err != nil {
		return "", fmt.Errorf("docker-env: %v: %s", err, out)
	}
	// Further lines may follow (the builder to use, a comment).
	for _, line := range strings.Split(string(out), "\n") {
		if host, ok := strings.CutPrefix(strings.TrimSpace(line), "export DOCKER_HOST="); ok {
			return host, nil
		}
	}
	return "", fmt.Errorf("docker-env printed no DOCKER_HOST: %s", out)
}

func (b *bench) dockerCmd(host string, args ...string) *exec.Cmd {
	cmd := b.asUser(exec.Command(dockerCLI, args...))
	cmd.Env = append(cmd.Env, "DOCKER_HOST="+host)
	return cmd
}

// run runs cmd, prepared with asUser, and names its output on failure.
func (b *bench) run(cmd *exec.Cmd) error {
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args, " "), err, lastLine(out))
	}
	return nil
}

// medianTime runs f dockerRepeats times and returns the median duration.
func (b *bench) medianTime(f func() error) string {
	var xs []float64
	for i := 0; i < dockerRepeats; i++ {
		t := time.Now()
		if err := f(); err != nil {
			return "failed: " + err.Error()
		}
		xs = append(xs, time.Since(t).Seconds())
	}
	return fmt.Sprintf("%.2f s", median(xs))
}

// dockerLoad loads the busybox image (docker save format) as image.
func (b *bench) dockerLoad(host, image string) error {
	img, err := testimage.New()
	if err != nil {
		return err
	}
	tarball, err := img.DockerSave(image)
	if err != nil {
		return err
	}
	p := filepath.Join(b.home, "docker-busybox.tar")
	if err := os.WriteFile(p, tarball, 0o644); err != nil {
		return err
	}
	return b.run(b.dockerCmd(host, "load", "-i", p))
}

// buildContext writes a small Dockerfile (FROM image, RUN, COPY) and the
// file it copies, readable by the test user.
func (b *bench) buildContext(image string) (string, error) {
	dir := filepath.Join(b.home, "build")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	files := map[string]string{
		"Dockerfile":   "FROM " + image + "\nRUN echo built > /built.txt\nCOPY greeting.txt /greeting.txt\nCMD [\"cat\", \"/greeting.txt\"]\n",
		"greeting.txt": "hello\n",
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}
