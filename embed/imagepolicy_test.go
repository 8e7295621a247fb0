package embed

import (
	"strings"
	"testing"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
)

func TestDeleteConflict(t *testing.T) {
	records := map[string]string{
		"docker.io/library/app:1":             "sha256:m1",
		"sha256:c1":                           "sha256:m1", // the CRI's ID record of app:1
		"docker.io/library/busybox:latest":    "sha256:m2",
		"docker.io/library/busybox@sha256:m2": "sha256:m2",
		"sha256:c2":                           "sha256:m2",
		"docker.io/library/unused:1":          "sha256:m3",
		"sha256:c3":                           "sha256:m3",
		"moby-dangling@sha256:m4":             "sha256:m4",
		"sha256:c4":                           "sha256:m4",
	}
	users := []imageUser{
		{Namespace: "default", Pod: "app", Container: "c", ImageRef: "sha256:c1"},
		{Namespace: "web", Pod: "bb", Container: "sh", ImageRef: "sha256:c2"},
		{Namespace: "default", Pod: "old", Container: "c", ImageRef: "sha256:c4"},
	}
	for _, tc := range []struct {
		name, del string
		refused   bool
		pod       string
	}{
		{name: "the only name of an image a pod runs", del: "docker.io/library/app:1", refused: true, pod: "default/app"},
		{name: "the CRI's record while a name stays", del: "sha256:c1", refused: false},
		{name: "a tag while a digest name stays", del: "docker.io/library/busybox:latest", refused: false},
		{name: "an image no pod runs", del: "docker.io/library/unused:1", refused: false},
		{name: "a dangling image a pod still runs (after a rebuild)", del: "moby-dangling@sha256:m4", refused: true, pod: "default/old"},
		{name: "a name that is not there", del: "docker.io/library/nope:1", refused: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := deleteConflict(tc.del, records, users)
			if (err != nil) != tc.refused {
				t.Fatalf("deleteConflict(%s) = %v, refused want %v", tc.del, err, tc.refused)
			}
			if err == nil {
				return
			}
			if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), tc.pod) || !strings.Contains(err.Error(), "delete the pod first") {
				t.Fatalf("the refusal does not say which pod and what to do: %v", err)
			}
		})
	}
	// The CRI's record goes when it is the last record of a used image:
	// the rule is about what clients see, and with no other name the
	// record is what keeps the image.
	if err := deleteConflict("sha256:c1", map[string]string{"sha256:c1": "sha256:m1"}, users); err == nil {
		t.Fatal("the last record of an image a pod runs was allowed to go")
	}
}

func TestCRIImageUser(t *testing.T) {
	c := &containersapi.Container{
		Labels: map[string]string{
			criKindLabel:                   "container",
			"io.kubernetes.pod.namespace":  "default",
			"io.kubernetes.pod.name":       "built",
			"io.kubernetes.container.name": "c",
		},
		Extensions: map[string]*anypb.Any{criMetadataExt: {
			TypeUrl: "github.com/containerd/containerd/internal/cri/store/container/Metadata",
			Value:   []byte(`{"Version":"v1","Metadata":{"ID":"abc","Name":"c","ImageRef":"sha256:c1","Config":{"image":{"image":"sha256:c1","user_specified_image":"app:1"}}}}`),
		}},
	}
	u, ok := criImageUser(c)
	if !ok || u != (imageUser{Namespace: "default", Pod: "built", Container: "c", ImageRef: "sha256:c1"}) {
		t.Fatalf("criImageUser = %+v, %v", u, ok)
	}
	c.Extensions = nil
	if _, ok := criImageUser(c); ok {
		t.Fatal("a container without CRI metadata has a user")
	}
}

func TestUpdatesAllLabels(t *testing.T) {
	for _, tc := range []struct {
		paths []string
		want  bool
	}{
		{nil, true},
		{[]string{"labels"}, true},
		{[]string{"target"}, false},
		{[]string{"target", "labels.io.cri-containerd.image"}, false},
	} {
		if got := updatesAllLabels(tc.paths); got != tc.want {
			t.Errorf("updatesAllLabels(%q) = %v, want %v", tc.paths, got, tc.want)
		}
	}
}
