package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"time"

	"github.com/unetes/unetes/embed"
	corev1 "k8s.io/api/core/v1"
	nodeutil "k8s.io/component-helpers/node/util"
)

// nodeStatus is one node of the cluster as `status` lists it.
type nodeStatus struct {
	Name    string `json:"name"`
	Ready   string `json:"ready"`            // True, False or Unknown
	Reason  string `json:"reason,omitempty"` // the Ready condition's message when not Ready
	Address string `json:"address,omitempty"`
	Kubelet string `json:"kubelet,omitempty"`
}

// fetchNodes lists the cluster's nodes as the instance's admin.
func fetchNodes(ctx context.Context, dataDir, server string) ([]nodeStatus, error) {
	client, err := embed.AdminClient(&embed.PKI{Dir: filepath.Join(dataDir, "pki")})
	if err != nil {
		return nil, err
	}
	client.Timeout = 5 * time.Second
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, server+"/api/v1/nodes", nil)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("list nodes: %s", resp.Status)
	}
	var list corev1.NodeList
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&list); err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return nodeRows(list.Items), nil
}

// nodeRows is what status says of each node.
func nodeRows(nodes []corev1.Node) []nodeStatus {
	var out []nodeStatus
	for _, n := range nodes {
		row := nodeStatus{Name: n.Name, Ready: "Unknown", Kubelet: n.Status.NodeInfo.KubeletVersion}
		if _, c := nodeutil.GetNodeCondition(&n.Status, corev1.NodeReady); c != nil {
			row.Ready = string(c.Status)
			if c.Status != corev1.ConditionTrue {
				row.Reason = c.Message
			}
		}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				row.Address = a.Address
				break
			}
		}
		out = append(out, row)
	}
	return out
}

// writeNodes prints the node rows under "nodes:".
func writeNodes(w io.Writer, nodes []nodeStatus, err error) {
	if err != nil {
		fmt.Fprintf(w, "nodes:       unknown (%v)\n", err)
		return
	}
	fmt.Fprintf(w, "nodes:       %d\n", len(nodes))
	for _, n := range nodes {
		state := "Ready"
		if n.Ready != "True" {
			state = "NotReady"
			if n.Reason != "" {
				state += ": " + n.Reason
			}
		}
		fmt.Fprintf(w, "  %-19s %s (%s, kubelet %s)\n", n.Name, state, n.Address, n.Kubelet)
	}
}
