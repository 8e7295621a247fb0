package join

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	nodeutil "k8s.io/component-helpers/node/util"
)

// CheckNodeName refuses a name that a Ready node of the cluster has: a
// second instance joining under it would take that node's identity. A
// NotReady node of that name is this host's earlier join coming back.
// Nothing is written on the server.
func CheckNodeName(ctx context.Context, c Cluster, token, name string) error {
	client, err := trusting(c.CA)
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.Server+"/api/v1/nodes/"+url.PathEscape(name), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("ask the cluster about node %q: %w", name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	switch resp.StatusCode {
	case http.StatusNotFound:
		return nil
	case http.StatusOK:
	case http.StatusUnauthorized:
		return errors.New("the cluster does not take this token (401): it is wrong or revoked; `unetes token` on the server prints the current one")
	case http.StatusForbidden:
		return fmt.Errorf("this token may not read nodes (403): the server's join add-on is older than this unetes; upgrade the server")
	default:
		return fmt.Errorf("ask the cluster about node %q: %s", name, resp.Status)
	}
	var node corev1.Node
	if err := json.Unmarshal(body, &node); err != nil {
		return fmt.Errorf("node %q: %w", name, err)
	}
	if _, ready := nodeutil.GetNodeCondition(&node.Status, corev1.NodeReady); ready != nil && ready.Status == corev1.ConditionTrue {
		return fmt.Errorf("a node named %q is in the cluster and Ready: join with another --name, or stop that node first (`kubectl delete node %s` once it is gone for good)", name, name)
	}
	return nil
}
