package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/rootless-containers/rootlesskit/v3/pkg/api/router"
	"github.com/rootless-containers/rootlesskit/v3/pkg/httputil"
	"github.com/unetes/unetes/embed"
	"github.com/unetes/unetes/hostfwd"
	"github.com/unetes/unetes/netstack"
	"github.com/unetes/unetes/nsinit"
)

// apiSocketName is the instance's control socket (mode 0600) in the state dir.
// It serves RootlessKit's REST API (so `rootlessctl --socket` works) plus
// unetes' own routes under /unetes/v1/.
const apiSocketName = "api.sock"

type statusResponse struct {
	Name      string    `json:"name"`
	PID       int       `json:"pid"`
	ChildPID  int       `json:"childPID"`
	StateDir  string    `json:"stateDir"`
	DataDir   string    `json:"dataDir"`
	StartedAt time.Time `json:"startedAt"`
	Network   struct {
		Guest             string `json:"guest"`
		Gateway           string `json:"gateway"`
		DNS               string `json:"dns"`
		MTU               int    `json:"mtu"`
		AllowHostLoopback bool   `json:"allowHostLoopback"`
		Upstreams         int    `json:"dnsUpstreams"`
		OpenFlows         int64  `json:"openFlows"`
	} `json:"network"`
	Forwards       []hostfwd.Forward `json:"forwards"`
	ResourceLimits struct {
		Enforced bool   `json:"enforced"`
		Reason   string `json:"reason"`
	} `json:"resourceLimits"`
	Kubernetes  bool                    `json:"kubernetes"`
	APIPort     int                     `json:"apiPort,omitempty"`
	APIServer   string                  `json:"apiServer,omitempty"`   // its URL for clients on this host
	APIEndpoint string                  `json:"apiEndpoint,omitempty"` // HOST:PORT for nodes on other hosts
	Components  []embed.ComponentStatus `json:"components,omitempty"`
	Joined      *joinedNode             `json:"joined,omitempty"` // a joined node: the cluster it is a node of
	// Nodes is filled in by the status command, from the API.
	Nodes []nodeStatus `json:"nodes,omitempty"`
}

func serveAPI(cfg runConfig, inst *nsinit.Instance, d *netstack.ParentDriver, fwd *hostfwd.Manager, stop func()) (io.Closer, error) {
	mux := http.NewServeMux()
	router.AddRoutes(mux, &router.Backend{StateDir: cfg.paths.StateDir, ChildPID: inst.ChildPID(), NetworkDriver: d, PortDriver: fwd})
	mux.HandleFunc("DELETE /unetes/v1/forwards/{key}", func(w http.ResponseWriter, r *http.Request) {
		k, err := hostfwd.ParseKey(r.PathValue("key"))
		if err == nil {
			err = fwd.Remove(r.Context(), k)
		}
		if err != nil {
			httputil.WriteError(w, r, err, http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("GET /unetes/v1/forwards", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, fwd.List(r.Context()))
	})
	mux.HandleFunc("POST /unetes/v1/forwards", func(w http.ResponseWriter, r *http.Request) {
		var spec hostfwd.Spec
		err := json.NewDecoder(r.Body).Decode(&spec)
		if err == nil {
			_, err = fwd.Add(r.Context(), spec)
		}
		if err != nil {
			httputil.WriteError(w, r, err, http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	// The cluster's LoadBalancer Services and hostPorts (the lb add-on in
	// the sandbox) publish their ports here: PUT the owner's whole list.
	mux.HandleFunc("PUT /unetes/v1/published/{owner...}", func(w http.ResponseWriter, r *http.Request) {
		var specs []hostfwd.Spec
		err := json.NewDecoder(r.Body).Decode(&specs)
		if err == nil {
			err = fwd.Publish(r.Context(), r.PathValue("owner"), specs)
		}
		if err != nil {
			httputil.WriteError(w, r, err, http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("GET /unetes/v1/status", func(w http.ResponseWriter, r *http.Request) {
		var s statusResponse
		s.Name, s.PID, s.ChildPID = cfg.name, os.Getpid(), inst.ChildPID()
		s.StateDir, s.DataDir, s.StartedAt = cfg.paths.StateDir, cfg.paths.DataDir, inst.Started()
		s.Kubernetes, s.APIPort = cfg.kubernetes, cfg.apiPort
		if cfg.kubernetes {
			s.APIServer, s.APIEndpoint = cfg.apiServer(), cfg.apiEndpoint()
		}
		s.Joined = cfg.join
		s.Components, _ = fetchComponents(r.Context(), cfg.paths.StateDir)
		s.ResourceLimits.Enforced, s.ResourceLimits.Reason = cfg.cgroup.Enforced(), cgroupWhy(cfg.cgroup)
		s.Network.Guest, s.Network.Gateway, s.Network.DNS = cfg.net.Guest.String(), cfg.net.Gateway.String(), cfg.net.DNS.String()
		s.Network.MTU, s.Network.AllowHostLoopback, s.Network.Upstreams = cfg.net.MTU, cfg.net.AllowHostLoopback, len(cfg.net.DNSUpstreams)
		if st := d.Stack(); st != nil {
			s.Network.OpenFlows = st.OpenFlows()
		}
		s.Forwards = fwd.List(r.Context())
		writeJSON(w, s)
	})
	mux.HandleFunc("POST /unetes/v1/stop", func(w http.ResponseWriter, r *http.Request) {
		stop()
		w.WriteHeader(http.StatusAccepted)
	})
	// dockerd's port API first: the sandbox waits for api.sock before it
	// starts dockerd, which asks its own at once.
	var docker io.Closer = closers{}
	if cfg.docker {
		var err error
		if docker, err = serveDockerPorts(cfg, inst, d, fwd); err != nil {
			return nil, err
		}
	}
	l, err := listenPrivate(filepath.Join(cfg.paths.StateDir, apiSocketName))
	if err != nil {
		docker.Close()
		return nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	return closers{srv, docker}, nil
}

// dockerPortsDirName holds dockerd's own RootlessKit API socket (its
// ROOTLESSKIT_STATE_DIR): the ports it publishes there are docker's, not
// saved and listed as such.
const dockerPortsDirName = "docker-ports"

func serveDockerPorts(cfg runConfig, inst *nsinit.Instance, d *netstack.ParentDriver, fwd *hostfwd.Manager) (io.Closer, error) {
	dir := filepath.Join(cfg.paths.StateDir, dockerPortsDirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ports, err := fwd.OwnedPorts(hostfwd.OwnerDocker)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	router.AddRoutes(mux, &router.Backend{StateDir: dir, ChildPID: inst.ChildPID(), NetworkDriver: d, PortDriver: ports})
	l, err := listenPrivate(filepath.Join(dir, apiSocketName))
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	return srv, nil
}

// closers closes each in turn.
type closers []io.Closer

func (cs closers) Close() error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// apiClient talks to a running instance's API socket.
func apiClient(stateDir string) *http.Client {
	return embed.UnixClient(filepath.Join(stateDir, apiSocketName), 10*time.Second)
}

// notRunningError names the instance and says how to start it: as it ran
// last (a data dir without certificates ran without Kubernetes).
func notRunningError(name string) error {
	how := "unetes run --name " + name
	if p, err := (&instanceFlags{name: name}).paths(); err == nil {
		_, data := os.Stat(p.DataDir)
		_, pki := os.Stat(filepath.Join(p.DataDir, "pki"))
		if data == nil && pki != nil {
			how += " --no-kubernetes"
		}
	}
	return fmt.Errorf("instance %q is not running: start it with `%s`", name, how)
}

func fetchStatus(name, stateDir string) (statusResponse, error) {
	var s statusResponse
	if _, err := nsinit.RunningPID(stateDir); errors.Is(err, nsinit.ErrNotRunning) {
		return s, notRunningError(name)
	}
	resp, err := apiClient(stateDir).Get("http://unetes/unetes/v1/status")
	if err != nil {
		return s, fmt.Errorf("query instance %q: %w (is it still starting?)", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("query instance %q: %s", name, resp.Status)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}
