package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func runStatus(args []string, stdout, stderr io.Writer) int {
	var inst instanceFlags
	var asJSON bool
	fs := newFlagSet("status", "status [--name N] [--json]", stderr)
	inst.register(fs)
	fs.BoolVar(&asJSON, "json", false, "print the status as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	paths, err := inst.paths()
	if err != nil {
		return fail(stderr, err)
	}
	s, err := fetchStatus(inst.name, paths.StateDir)
	if err != nil {
		return fail(stderr, err)
	}
	var nodesErr error
	if s.Kubernetes && s.APIServer != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.Nodes, nodesErr = fetchNodes(ctx, paths.DataDir, s.APIServer)
		cancel()
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(s)
		return 0
	}
	loop := "closed"
	if s.Network.AllowHostLoopback {
		loop = "open"
	}
	fmt.Fprintf(stdout, "instance:    %s (running for %s)\n", s.Name, time.Since(s.StartedAt).Round(time.Second))
	fmt.Fprintf(stdout, "pids:        parent %d, namespaces %d\n", s.PID, s.ChildPID)
	fmt.Fprintf(stdout, "network:     %s via %s, DNS %s (%d upstreams), MTU %d, %d open flows\n",
		s.Network.Guest, s.Network.Gateway, s.Network.DNS, s.Network.Upstreams, s.Network.MTU, s.Network.OpenFlows)
	fmt.Fprintf(stdout, "host loopback: %s\n", loop)
	var fwd, published []string
	for _, f := range s.Forwards {
		line := fmt.Sprintf("%s -> %s", f.Spec.Key(), f.Leads())
		switch f.Origin() {
		case "service", "hostPort":
			published = append(published, line)
		default:
			fwd = append(fwd, line)
		}
	}
	fmt.Fprintf(stdout, "forwards:    %s\n", orNone(fwd))
	if s.Kubernetes {
		fmt.Fprintf(stdout, "published:   %s\n", orNone(published))
	}
	if s.ResourceLimits.Enforced {
		fmt.Fprintf(stdout, "limits:      enforced (%s)\n", s.ResourceLimits.Reason)
	} else {
		fmt.Fprintf(stdout, "limits:      NOT enforced (%s): pod limits are accepted but not applied; `unetes doctor` says how to delegate cgroups\n", s.ResourceLimits.Reason)
	}
	if s.Joined != nil {
		fmt.Fprintf(stdout, "kubernetes:  node %s (at %s) of the cluster at %s; the server's `unetes status` lists the nodes\n", s.Joined.Node, s.Joined.Address, s.Joined.Server)
	} else if !s.Kubernetes {
		fmt.Fprintf(stdout, "kubernetes:  off (--no-kubernetes)\n")
	} else {
		server := s.APIServer
		if server == "" { // a run from before the field
			server = fmt.Sprintf("https://127.0.0.1:%d", s.APIPort)
		}
		fmt.Fprintf(stdout, "kubernetes:  API at %s", server)
		if s.APIEndpoint != "" && server != "https://"+s.APIEndpoint {
			fmt.Fprintf(stdout, ", for other hosts at %s", s.APIEndpoint)
		}
		fmt.Fprintln(stdout)
	}
	for _, c := range s.Components {
		if c.State == "disabled" {
			fmt.Fprintf(stdout, "  %-19s disabled (--disable %s)\n", c.Name, c.Name)
			continue
		}
		line := fmt.Sprintf("  %-19s %s since %s", c.Name, c.State, c.Since.Format(time.TimeOnly))
		if c.Error != "" {
			line += ": " + c.Error
		}
		if c.Note != "" {
			line += " (" + c.Note + ")"
		}
		fmt.Fprintln(stdout, line)
	}
	if s.Kubernetes && s.APIServer != "" {
		writeNodes(stdout, s.Nodes, nodesErr)
	}
	if snap, err := os.ReadFile(filepath.Join(s.StateDir, snapshotterFileName)); err == nil {
		fmt.Fprintf(stdout, "snapshotter: %s\n", snap)
	}
	fmt.Fprintf(stdout, "state:       %s\ndata:        %s\n", s.StateDir, s.DataDir)
	return 0
}

// orNone joins list, one item per line under the first, or says "none".
func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, "\n             ")
}
