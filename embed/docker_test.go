package embed

import (
	"encoding/json"
	"testing"

	goldenfile "github.com/unetes/unetes/embed/internal/golden"
)

func TestDockerDaemonJSONGolden(t *testing.T) {
	c := DockerConfig{Socket: "/state/docker.sock", DataRoot: "/data/docker", ExecRoot: "/run/docker",
		ContainerdSock: "/state/containerd.sock", Snapshotter: "overlayfs", PortsDir: "/state/docker-ports", PortIP: "127.0.0.1"}
	goldenfile.Check(t, "dockerd", string(dockerDaemonJSON(c, true)))
	var off map[string]any
	if err := json.Unmarshal(dockerDaemonJSON(c, false), &off); err != nil || off["live-restore"] != false {
		t.Fatalf("daemon.json for the stop: %v %v", off["live-restore"], err)
	}
	env := dockerdEnv(c)
	if len(env) != 2 || env[0] != "ROOTLESSKIT_STATE_DIR=/state/docker-ports" || env[1] != "XDG_RUNTIME_DIR=/run" {
		t.Fatalf("dockerd env: %q", env)
	}
	c.NoBrNetfilter = true
	if env := dockerdEnv(c); len(env) != 3 || env[2] != "DOCKER_IGNORE_BR_NETFILTER_ERROR=1" {
		t.Fatalf("dockerd env without br_netfilter: %q", env)
	}
}
