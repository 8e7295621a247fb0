package embed

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

func TestRequestedLimits(t *testing.T) {
	for _, tc := range []struct {
		name, method, uri, body string
		want                    []string
	}{
		{"run without limits (the CLI's defaults)", "POST", "/v1.41/containers/create?name=a",
			`{"Image":"b","HostConfig":{"Memory":0,"MemorySwap":0,"NanoCpus":0,"CpuShares":0,"PidsLimit":null,"CpusetCpus":"","BlkioDeviceReadBps":[],"Ulimits":[{"Name":"nofile","Soft":10,"Hard":10}]}}`, nil},
		{"--memory --cpus", "POST", "/v1.41/containers/create", `{"HostConfig":{"Memory":33554432,"MemorySwap":-1,"NanoCpus":500000000}}`,
			[]string{"--cpus", "--memory"}},
		{"--pids-limit -1 is unlimited", "POST", "/containers/create", `{"HostConfig":{"PidsLimit":-1}}`, nil},
		{"--pids-limit --cpuset-cpus", "POST", "/containers/create", `{"HostConfig":{"PidsLimit":10,"CpusetCpus":"0"}}`,
			[]string{"--cpuset-cpus", "--pids-limit"}},
		{"update", "POST", "/v1.41/containers/abc/update", `{"Memory":6291456,"RestartPolicy":{"Name":"always"}}`, []string{"--memory"}},
		{"update of the restart policy", "POST", "/v1.41/containers/abc/update", `{"RestartPolicy":{"Name":"always"}}`, nil},
		{"another call", "POST", "/v1.41/containers/abc/start", `{"Memory":1}`, nil},
		{"a container named update is no update", "POST", "/v1.41/containers/create?name=update", `{}`, nil},
		{"a GET", "GET", "/v1.41/containers/json", ``, nil},
	} {
		if got := requestedLimits(tc.method, tc.uri, []byte(tc.body)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestDockerLimitsPlugin(t *testing.T) {
	h := dockerLimitsHandler(true)
	call := func(path string, v any) map[string]any {
		b, _ := json.Marshal(v)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(b)))
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s: %v (%s)", path, err, rec.Body)
		}
		return out
	}
	if got := call("/Plugin.Activate", nil); !reflect.DeepEqual(got["Implements"], []any{"authz"}) {
		t.Fatalf("activate: %v", got)
	}
	deny := call("/AuthZPlugin.AuthZReq", authzRequest{RequestMethod: "POST", RequestURI: "/v1.41/containers/create",
		RequestBody: []byte(`{"HostConfig":{"Memory":33554432}}`)})
	if deny["Allow"] != false || !strings.HasPrefix(deny["Msg"].(string), "--memory: unetes' Docker does not enforce") ||
		!strings.Contains(deny["Msg"].(string), "run it as a pod") {
		t.Fatalf("a container with a limit: %v", deny)
	}
	if got := call("/AuthZPlugin.AuthZReq", authzRequest{RequestMethod: "POST", RequestURI: "/v1.41/containers/create",
		RequestBody: []byte(`{"HostConfig":{}}`)}); got["Allow"] != true {
		t.Fatalf("a container without limits: %v", got)
	}
	if got := call("/AuthZPlugin.AuthZRes", authzRequest{RequestMethod: "GET", RequestURI: "/_ping"}); got["Allow"] != true {
		t.Fatalf("a response: %v", got)
	}
	if m := dockerLimitsMessage([]string{"--cpus"}, false); !strings.Contains(m, "not even pods' limits") {
		t.Fatalf("without pod limits: %s", m)
	}
}
