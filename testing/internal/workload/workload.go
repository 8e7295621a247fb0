// Package workload holds the Kubernetes manifests that the end-to-end tests
// and the benchmark both apply.
package workload

import "fmt"

// Sleepers is a Deployment name of n pods of image that only sleep (label
// app=name), quick to stop.
func Sleepers(name string, n int, image string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: %[2]d
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {name: c, image: %[3]s, imagePullPolicy: Never, command: ["sleep", "100000"]}
`, name, n, image)
}
