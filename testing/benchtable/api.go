package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// podLister reads pods straight from an instance's API with the user's
// kubeconfig. The bench polls through it, not through `unetes kubectl`:
// each kubectl run costs ~0.35 s of CPU (the whole binary starting), which
// polling would take from the very start-up it measures on a 2-core host.
type podLister struct {
	c    *http.Client
	host string
}

func (b *bench) podLister(inst string) (*podLister, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(b.home, ".config", "unetes", inst, "kubeconfig"))
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 2 * time.Second
	c, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	return &podLister{c: c, host: cfg.Host}, nil
}

// podState is what the bench needs of a pod: its phase, and when its first
// container started running (zero if it is not running).
type podState struct {
	Phase   string
	Started time.Time
}

// pods lists the default namespace's pods matching the label selector, and
// the field selector if any ("metadata.name=bench").
func (l *podLister) pods(labels, fields string) ([]podState, error) {
	q := url.Values{"labelSelector": {labels}, "fieldSelector": {fields}}
	resp, err := l.c.Get(l.host + "/api/v1/namespaces/default/pods?" + q.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("list pods: %s", resp.Status)
	}
	var list struct {
		Items []struct {
			Status struct {
				Phase             string
				ContainerStatuses []struct {
					State struct {
						Running *struct{ StartedAt time.Time }
					}
				}
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, err
	}
	var out []podState
	for _, it := range list.Items {
		s := podState{Phase: it.Status.Phase}
		if cs := it.Status.ContainerStatuses; len(cs) > 0 && cs[0].State.Running != nil {
			s.Started = cs[0].State.Running.StartedAt
		}
		out = append(out, s)
	}
	return out, nil
}
