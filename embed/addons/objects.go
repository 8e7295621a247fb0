package addons

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
)

// Labels on every object an add-on owns: removal deletes only objects
// that carry them, so a user's own kube-dns (say) is never touched.
const (
	managedByLabel = "app.kubernetes.io/managed-by"
	managedBy      = "unetes"
	addonLabel     = "unetes.io/addon"
	fieldManager   = "unetes"
)

// apply creates or updates objs with server-side apply, labelled as the
// add-on's, without forcing: a field that someone else (a user's `kubectl
// edit`, `annotate`, `apply`) set to another value stays theirs. Such an
// object is left as it is, whole, and named in what apply returns.
func apply(ctx context.Context, dyn dynamic.Interface, addon string, objs []runtime.Object) (kept []string, err error) {
	for _, o := range objs {
		u, gvr, err := toUnstructured(o)
		if err != nil {
			return kept, err
		}
		labels := u.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[managedByLabel], labels[addonLabel] = managedBy, addon
		u.SetLabels(labels)
		_, err = dyn.Resource(gvr).Namespace(u.GetNamespace()).Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: fieldManager})
		if fields := conflictingFields(err); len(fields) > 0 {
			kept = append(kept, fmt.Sprintf("%s %s (%s)", u.GetKind(), objName(u), strings.Join(fields, ", ")))
			continue
		}
		if err != nil {
			return kept, fmt.Errorf("apply %s %s: %w", u.GetKind(), objName(u), err)
		}
	}
	return kept, nil
}

// conflictingFields are the fields a server-side apply conflict names, each
// with who holds it; none for any other error.
func conflictingFields(err error) []string {
	var st apierrors.APIStatus
	if !apierrors.IsConflict(err) || !errors.As(err, &st) || st.Status().Details == nil {
		return nil
	}
	var out []string
	for _, c := range st.Status().Details.Causes {
		if c.Type == metav1.CauseTypeFieldManagerConflict {
			out = append(out, c.Field+": "+c.Message)
		}
	}
	return out
}

// deleteOwned deletes those of objs that exist and carry the add-on's label.
func deleteOwned(ctx context.Context, dyn dynamic.Interface, addon string, objs []runtime.Object) error {
	for i := len(objs) - 1; i >= 0; i-- {
		u, gvr, err := toUnstructured(objs[i])
		if err != nil {
			return err
		}
		r := dyn.Resource(gvr).Namespace(u.GetNamespace())
		cur, err := r.Get(ctx, u.GetName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("get %s %s: %w", u.GetKind(), objName(u), err)
		}
		if cur.GetLabels()[addonLabel] != addon {
			continue
		}
		uid := cur.GetUID()
		err = r.Delete(ctx, u.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s %s: %w", u.GetKind(), objName(u), err)
		}
	}
	return nil
}

// toUnstructured converts a typed object (its TypeMeta set) for the
// dynamic client, without status and empty timestamps.
func toUnstructured(o runtime.Object) (*unstructured.Unstructured, schema.GroupVersionResource, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, schema.GroupVersionResource{}, err
	}
	u := &unstructured.Unstructured{Object: m}
	delete(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	gvk := u.GroupVersionKind()
	if gvk.Kind == "" || gvk.Version == "" {
		return nil, schema.GroupVersionResource{}, fmt.Errorf("object %s has no apiVersion and kind", objName(u))
	}
	gvr, _ := meta.UnsafeGuessKindToResource(gvk)
	return u, gvr, nil
}

func objName(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return ns + "/" + u.GetName()
	}
	return u.GetName()
}

// endpointSlice points the selector-less Service service in kube-system at
// the add-on serving on ip (in this process), ready once serving.
func endpointSlice(env Env, ip net.IP, service string, serving bool, ports ...discoveryv1.EndpointPort) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta: metav1.ObjectMeta{Name: service + "-unetes", Namespace: "kube-system", Labels: map[string]string{
			discoveryv1.LabelServiceName: service,
			discoveryv1.LabelManagedBy:   "addons.unetes.io",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{ip.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(serving), Serving: ptr.To(serving), Terminating: ptr.To(false)},
			NodeName:   ptr.To(env.NodeName),
		}},
		Ports: ports,
	}
}

// endpointPort is one port of an add-on's EndpointSlice.
func endpointPort(name string, proto corev1.Protocol, port int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: ptr.To(name), Protocol: ptr.To(proto), Port: ptr.To(port)}
}
