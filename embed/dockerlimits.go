package embed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// A rootless dockerd applies resource limits only through systemd's cgroup
// driver, which unetes does not use; with any other it drops them with a
// warning that blames the kernel, and the container runs unlimited. So
// unetes refuses them instead: dockerd asks an authorization plugin of
// unetes' (moby's authz plugin protocol, served by the sandbox on the
// namespace's /run/docker/plugins) about every API request, and it denies
// creating or updating a container with limits, naming the flags.

// dockerLimitsPlugin is the plugin's name in daemon.json and in the error
// clients print ("authorization denied by plugin unetes-limits: ...").
const dockerLimitsPlugin = "unetes-limits"

// dockerLimitsSocket is where dockerd looks for the plugin: the plugins
// directory of its /run (rootless dockerd looks in /run/docker/plugins).
func dockerLimitsSocket(c DockerConfig) string {
	return filepath.Join(filepath.Dir(c.ExecRoot), "docker", "plugins", dockerLimitsPlugin+".sock")
}

// limitFlags maps the Resources fields of the Engine API to the docker CLI
// flags that set them (compose's keys set the same fields).
var limitFlags = map[string]string{
	"Memory": "--memory", "MemoryReservation": "--memory-reservation", "MemorySwap": "--memory-swap",
	"KernelMemory": "--kernel-memory", "NanoCpus": "--cpus", "CpuQuota": "--cpu-quota", "CpuPeriod": "--cpu-period",
	"CpuShares": "--cpu-shares", "CpusetCpus": "--cpuset-cpus", "CpusetMems": "--cpuset-mems", "PidsLimit": "--pids-limit",
	"BlkioWeight": "--blkio-weight", "CpuRealtimePeriod": "--cpu-rt-period", "CpuRealtimeRuntime": "--cpu-rt-runtime",
	"BlkioWeightDevice": "--blkio-weight-device", "BlkioDeviceReadBps": "--device-read-bps",
	"BlkioDeviceWriteBps": "--device-write-bps", "BlkioDeviceReadIOps": "--device-read-iops",
	"BlkioDeviceWriteIOps": "--device-write-iops",
}

var (
	createPath = regexp.MustCompile(`^(/v[0-9.]+)?/containers/create$`)
	updatePath = regexp.MustCompile(`^(/v[0-9.]+)?/containers/[^/]+/update$`)
)

// requestedLimits names the limit flags an Engine API request sets: a
// container create (limits in HostConfig) or update (limits at the top).
// Zero, empty and -1 (unlimited) ask for nothing. Pure.
func requestedLimits(method, uri string, body []byte) []string {
	if method != http.MethodPost || len(body) == 0 {
		return nil
	}
	path, _, _ := strings.Cut(uri, "?")
	var res map[string]json.RawMessage
	switch {
	case createPath.MatchString(path):
		var c struct{ HostConfig map[string]json.RawMessage }
		if json.Unmarshal(body, &c) != nil {
			return nil
		}
		res = c.HostConfig
	case updatePath.MatchString(path):
		if json.Unmarshal(body, &res) != nil {
			return nil
		}
	default:
		return nil
	}
	var flags []string
	for field, flag := range limitFlags {
		if v, ok := res[field]; ok && asksLimit(v) {
			flags = append(flags, flag)
		}
	}
	sort.Strings(flags)
	return flags
}

// asksLimit: a positive number, a non-empty string or list.
func asksLimit(v json.RawMessage) bool {
	var n float64
	if json.Unmarshal(v, &n) == nil {
		return n > 0
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s != ""
	}
	var l []any
	if json.Unmarshal(v, &l) == nil {
		return len(l) > 0
	}
	return false
}

// dockerLimitsMessage is what the client prints after "authorization
// denied by plugin unetes-limits: ". Pure.
func dockerLimitsMessage(flags []string, podLimits bool) string {
	pods := "pods' limits are enforced on this host: run it as a pod (kubectl) to have them"
	if !podLimits {
		pods = "on this host not even pods' limits are (`unetes doctor` says why)"
	}
	return fmt.Sprintf("%s: unetes' Docker does not enforce container resource limits (a rootless dockerd applies them only through systemd, which unetes does not use), and refuses them rather than run the container unlimited; "+
		"run it without them (compose: mem_limit, memswap_limit, cpus, cpu_shares, cpuset, pids_limit, deploy.resources.limits); %s",
		strings.Join(flags, ", "), pods)
}

// authzRequest and authzResponse are moby's authz plugin messages
// (pkg/authorization), the fields unetes reads and writes.
type authzRequest struct {
	RequestMethod string `json:"RequestMethod"`
	RequestURI    string `json:"RequestUri"`
	RequestBody   []byte `json:"RequestBody"`
}

type authzResponse struct {
	Allow bool   `json:"Allow"`
	Msg   string `json:"Msg,omitempty"`
	Err   string `json:"Err,omitempty"`
}

// dockerLimitsHandler serves the plugin's three calls.
func dockerLimitsHandler(podLimits bool) http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/vnd.docker.plugins.v1.2+json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("POST /Plugin.Activate", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, map[string][]string{"Implements": {"authz"}})
	})
	mux.HandleFunc("POST /AuthZPlugin.AuthZReq", func(w http.ResponseWriter, r *http.Request) {
		var req authzRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			reply(w, authzResponse{Err: "unetes-limits: bad request: " + err.Error()})
			return
		}
		if flags := requestedLimits(req.RequestMethod, req.RequestURI, req.RequestBody); len(flags) > 0 {
			reply(w, authzResponse{Msg: dockerLimitsMessage(flags, podLimits)})
			return
		}
		reply(w, authzResponse{Allow: true})
	})
	mux.HandleFunc("POST /AuthZPlugin.AuthZRes", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, authzResponse{Allow: true})
	})
	return mux
}

// serveDockerLimits listens on the plugin's socket until ctx ends; dockerd
// activates the plugin as it starts, so this comes first.
func serveDockerLimits(ctx context.Context, c DockerConfig) error {
	sock := dockerLimitsSocket(c)
	if err := os.MkdirAll(filepath.Dir(sock), 0o700); err != nil {
		return fmt.Errorf("docker: limits plugin: %w", err)
	}
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("docker: limits plugin: %w", err)
	}
	srv := &http.Server{Handler: dockerLimitsHandler(c.PodLimits)}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = l.Close()
		}
	}()
	return nil
}
