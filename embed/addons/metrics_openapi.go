package addons

import (
	"strings"

	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/util"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"sigs.k8s.io/metrics-server/pkg/api"
	generatedopenapi "sigs.k8s.io/metrics-server/pkg/api/generated/openapi"
)

// fixOpenAPINames gives metrics-server's server config OpenAPI
// definitions under this Kubernetes' model names (metricsOpenAPIDefinitions),
// keeping its titles and versions.
func fixOpenAPINames(c *genericapiserver.Config) {
	namer := openapinamer.NewDefinitionNamer(api.Scheme)
	v2, v3 := genericapiserver.DefaultOpenAPIConfig(metricsOpenAPIDefinitions, namer), genericapiserver.DefaultOpenAPIV3Config(metricsOpenAPIDefinitions, namer)
	v2.Info, v3.Info = c.OpenAPIConfig.Info, c.OpenAPIV3Config.Info
	c.OpenAPIConfig, c.OpenAPIV3Config = v2, v3
}

// metricsOpenAPIDefinitions are metrics-server's generated OpenAPI
// definitions under the names this Kubernetes gives its models. v0.8.0 was
// generated with Go package paths as names ("k8s.io/metrics/…/v1beta1.NodeMetrics"),
// while the types of k8s.io/metrics 0.37 name themselves the REST way
// ("io.k8s.metrics.….v1beta1.NodeMetrics"): without the renaming, the metrics
// API does not install ("cannot find model definition").
func metricsOpenAPIDefinitions(ref common.ReferenceCallback) map[string]common.OpenAPIDefinition {
	defs := generatedopenapi.GetOpenAPIDefinitions(func(name string) spec.Ref { return ref(restName(name)) })
	out := make(map[string]common.OpenAPIDefinition, len(defs))
	for name, d := range defs {
		for i, dep := range d.Dependencies {
			d.Dependencies[i] = restName(dep)
		}
		out[restName(name)] = d
	}
	return out
}

// restName turns a Go-path model name into the REST one; names already in
// that form (no slash) stay.
func restName(name string) string {
	if !strings.Contains(name, "/") {
		return name
	}
	return util.ToRESTFriendlyName(name)
}
