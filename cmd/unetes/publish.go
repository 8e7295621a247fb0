package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/rootless-containers/rootlesskit/v3/pkg/httputil"
	"github.com/unetes/unetes/embed/addons"
	"github.com/unetes/unetes/hostfwd"
)

// apiPublisher is the lb add-on's way to the host: it runs in the sandbox
// and asks the parent, over the API socket, to open host ports.
type apiPublisher struct{ c *http.Client }

var _ addons.Publisher = apiPublisher{}

func (p apiPublisher) Publish(ctx context.Context, owner string, ports []addons.HostPort) error {
	specs := make([]hostfwd.Spec, 0, len(ports))
	for _, hp := range ports {
		specs = append(specs, hostfwd.Spec{HostIP: hp.HostIP, HostPort: hp.HostPort, Port: hp.Port, Proto: hp.Proto, To: hp.To})
	}
	body, _ := json.Marshal(specs)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://unetes/unetes/v1/published/"+owner, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.c.Do(req)
	if err != nil {
		return fmt.Errorf("reach the unetes API socket: %w", err)
	}
	defer resp.Body.Close()
	return httputil.Successful(resp)
}
