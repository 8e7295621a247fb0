package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/unetes/unetes/embed"
	"github.com/unetes/unetes/hostfwd"
	"github.com/unetes/unetes/nsinit"
	corev1 "k8s.io/api/core/v1"
	nodeutil "k8s.io/component-helpers/node/util"
)

// apiPortInside is where the apiserver listens inside the namespace.
const apiPortInside = 6443

func (cfg runConfig) embedConfig() embed.Config {
	return embed.DefaultConfig(cfg.name, cfg.paths.DataDir, cfg.paths.StateDir, net.IP(cfg.net.Guest.AsSlice()), nil)
}

// apiServer is the API's URL for clients on this host: the loopback
// address unless the API listens on another address only.
func (cfg runConfig) apiServer() string {
	host := cfg.apiAddress
	if host.IsUnspecified() || host.IsLoopback() {
		host = hostfwd.DefaultHostIP
	}
	return "https://" + net.JoinHostPort(host.String(), strconv.Itoa(cfg.apiPort))
}

// apiEndpoint is HOST:PORT where nodes on other hosts reach the API.
func (cfg runConfig) apiEndpoint() string {
	return net.JoinHostPort(cfg.apiAdvertise.String(), strconv.Itoa(cfg.apiPort))
}

// checkAPIPort fails fast, naming --api-port or --api-address, when the
// host port is taken or the address is not this host's.
func checkAPIPort(addr netip.Addr, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(addr.String(), strconv.Itoa(port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("port %d on %s is taken, so the Kubernetes API cannot be forwarded there: pass --api-port with a free port", port, addr)
		}
		if errors.Is(err, syscall.EADDRNOTAVAIL) {
			return fmt.Errorf("--api-address %s is not an address of this host: pass 127.0.0.1 (the default), 0.0.0.0 or one of `ip -br addr`", addr)
		}
		return fmt.Errorf("the Kubernetes API port %d cannot be used (%v): pass --api-port with a free port from 1024", port, err)
	}
	return l.Close()
}

// prepareCerts creates or reuses the cluster's PKI before the instance starts.
func prepareCerts(cfg runConfig) (*embed.PKI, error) {
	pc, err := cfg.embedConfig().PKIConfig()
	if err != nil {
		return nil, err
	}
	if !cfg.apiAdvertise.IsLoopback() {
		pc.ExtraIPs = []net.IP{net.IP(cfg.apiAdvertise.AsSlice())}
	}
	return embed.EnsurePKI(pc)
}

// forwardAPI opens the Kubernetes API's port on the host, before the saved
// forwards are restored: a saved forward cannot take it.
func forwardAPI(ctx context.Context, cfg runConfig, fwd *hostfwd.Manager) error {
	specs := []hostfwd.Spec{{HostIP: cfg.apiAddress, HostPort: uint16(cfg.apiPort), Port: apiPortInside, Proto: "tcp"}}
	what := fmt.Sprintf("the Kubernetes API (--api-port %d)", cfg.apiPort)
	if !cfg.apiAdvertise.IsLoopback() {
		// Nodes can join: the overlay's VXLAN port too, where they send.
		specs = append(specs, overlayForward(cfg.apiAddress))
		what += fmt.Sprintf(" and the overlay's port %d/udp (one unetes with --api-address per host address)", embed.OverlayPort)
	}
	if err := fwd.Publish(ctx, hostfwd.OwnerAPI, specs); err != nil {
		return fmt.Errorf("forward %s: %w", what, err)
	}
	return nil
}

// overlayForward is the overlay's VXLAN port on the host address ip, which
// the other nodes send the pods' traffic to (embed.Overlay).
func overlayForward(ip netip.Addr) hostfwd.Spec {
	return hostfwd.Spec{HostIP: ip, HostPort: embed.OverlayPort, Port: embed.OverlayPort, Proto: "udp"}
}

// bringUpKubernetes waits for the apiserver and the controllers, and
// writes the admin kubeconfig.
func bringUpKubernetes(ctx context.Context, cfg runConfig, inst *nsinit.Instance, pki *embed.PKI, progress func(string, time.Duration)) (string, error) {
	t := time.Now()
	if err := poll(ctx, inst, 3*time.Minute, "etcd", func(ctx context.Context) error {
		return componentsReady(ctx, cfg.paths.StateDir, embed.Etcd)
	}); err != nil {
		return "", err
	}
	t = since(progress, "etcd", t)
	client, err := embed.AdminClient(pki)
	if err != nil {
		return "", err
	}
	// Serving is enough here: on a cold start the sandbox starts the
	// controllers, awaited next, only once the full /readyz passes.
	url := cfg.apiServer() + embed.APIServingPath
	if err := poll(ctx, inst, 3*time.Minute, "the apiserver", func(ctx context.Context) error {
		return embed.GetOK(ctx, client, url)
	}); err != nil {
		return "", err
	}
	t = since(progress, "apiserver ready", t)
	if err := poll(ctx, inst, 3*time.Minute, "the controllers", func(ctx context.Context) error {
		return componentsReady(ctx, cfg.paths.StateDir, embed.Etcd, embed.APIServer, embed.ControllerManager, embed.Scheduler)
	}); err != nil {
		return "", err
	}
	t = since(progress, "controllers ready", t)
	if err := poll(ctx, inst, 3*time.Minute, "the kubelet and kube-proxy", func(ctx context.Context) error {
		return componentsReady(ctx, cfg.paths.StateDir, embed.Containerd, embed.Kubelet, embed.KubeProxy)
	}); err != nil {
		return "", err
	}
	node := embed.NodeName(cfg.name)
	nodeURL := cfg.apiServer() + "/api/v1/nodes/" + node
	started := inst.Started().Truncate(time.Second)
	if err := poll(ctx, inst, 3*time.Minute, "node "+node+" Ready", func(ctx context.Context) error {
		return nodeReady(ctx, client, nodeURL, started)
	}); err != nil {
		return "", err
	}
	if err := poll(ctx, inst, 3*time.Minute, "the default namespace's service account and CA", func(ctx context.Context) error {
		return ensurePodPrerequisites(ctx, client, cfg.apiServer(), pki)
	}); err != nil {
		return "", err
	}
	t = since(progress, "node ready", t)
	if on := cfg.addons(); len(on) > 0 {
		if err := poll(ctx, inst, 3*time.Minute, "the add-ons", func(ctx context.Context) error {
			return componentsReady(ctx, cfg.paths.StateDir, on...)
		}); err != nil {
			return "", err
		}
		since(progress, "add-ons", t)
	}
	kc := filepath.Join(cfg.paths.ConfigDir, "kubeconfig")
	server := cfg.apiServer()
	if err := embed.WriteAdminKubeconfig(pki, cfg.name, server, kc); err != nil {
		return "", err
	}
	return kc, nil
}

// ensureObject creates the object name in the collection at url (POST of
// body) unless it exists already.
func ensureObject(ctx context.Context, c *http.Client, url, name string, body []byte) error {
	if err := embed.GetOK(ctx, c, url+"/"+name); err == nil {
		return nil
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusConflict {
		return fmt.Errorf("create %s: %s", name, resp.Status)
	}
	return nil
}

// ensurePodPrerequisites creates what every pod in the default namespace
// needs and the controller-manager makes only a few seconds after a first
// start: the default service account (without it a pod is refused) and the
// kube-root-ca.crt config map (without it a pod's token volume waits). The
// controllers adopt both.
func ensurePodPrerequisites(ctx context.Context, c *http.Client, server string, pki *embed.PKI) error {
	ns := server + "/api/v1/namespaces/default"
	sa := []byte(`{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default"}}`)
	if err := ensureObject(ctx, c, ns+"/serviceaccounts", "default", sa); err != nil {
		return err
	}
	ca, err := os.ReadFile(pki.Path("ca.crt"))
	if err != nil {
		return err
	}
	cm, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "kube-root-ca.crt"}, "data": map[string]string{"ca.crt": string(ca)}})
	return ensureObject(ctx, c, ns+"/configmaps", "kube-root-ca.crt", cm)
}

// nodeReady passes when the node at url has condition Ready=True, posted
// (heartbeat) since this instance started: etcd still holds the last run's.
func nodeReady(ctx context.Context, c *http.Client, url string, since time.Time) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	var n corev1.Node
	if err := json.NewDecoder(resp.Body).Decode(&n); err != nil {
		return err
	}
	_, ready := nodeutil.GetNodeCondition(&n.Status, corev1.NodeReady)
	switch {
	case ready == nil:
		return errors.New("no Ready condition yet")
	case ready.LastHeartbeatTime.Time.Before(since):
		return errors.New("no status from the kubelet yet")
	case ready.Status != corev1.ConditionTrue:
		return fmt.Errorf("not ready: %s", ready.Message)
	}
	return nil
}

func since(progress func(string, time.Duration), phase string, t time.Time) time.Time {
	progress(phase, time.Since(t))
	return time.Now()
}

// poll retries check until it passes, the instance exits, or d passes.
func poll(ctx context.Context, inst *nsinit.Instance, d time.Duration, what string, check func(context.Context) error) error {
	deadline := time.Now().Add(d)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := check(cctx)
		cancel()
		if err == nil {
			return nil
		}
		var failed *componentFailedError
		if errors.As(err, &failed) {
			return err
		}
		select {
		case <-inst.Done():
			return fmt.Errorf("the instance exited while waiting for %s: %v%s", what, inst.Wait(), inst.ChildError())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %w", what, d, err)
		}
	}
}

// fetchComponents asks the sandbox for its components' states.
func fetchComponents(ctx context.Context, stateDir string) ([]embed.ComponentStatus, error) {
	c := embed.UnixClient(filepath.Join(stateDir, sandboxSocketName), 0)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://sandbox/components", nil)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var sts []embed.ComponentStatus
	return sts, json.NewDecoder(resp.Body).Decode(&sts)
}

// componentFailedError is a component that failed to start: poll gives up
// at once.
type componentFailedError struct{ st embed.ComponentStatus }

func (e *componentFailedError) Error() string {
	return fmt.Sprintf("%s failed: %s", e.st.Name, e.st.Error)
}

// componentsReady passes when every named component is ready, and fails at
// once when any component failed.
func componentsReady(ctx context.Context, stateDir string, names ...string) error {
	sts, err := fetchComponents(ctx, stateDir)
	if err != nil {
		return err
	}
	ready := map[string]bool{}
	for _, s := range sts {
		if s.State == "failed" {
			return &componentFailedError{s}
		}
		ready[s.Name] = s.State == "ready"
	}
	for _, n := range names {
		if !ready[n] {
			return fmt.Errorf("%s not ready", n)
		}
	}
	return nil
}
