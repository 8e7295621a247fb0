package embed

import (
	"context"
	"sync"
	_ "unsafe" // go:linkname

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"
	"go.etcd.io/etcd/server/v3/etcdserver"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"k8s.io/apiserver/pkg/storage"
	etcdfeature "k8s.io/apiserver/pkg/storage/feature"
	"k8s.io/apiserver/pkg/storage/storagebackend"
)

// The apiserver and etcd share this process, so the apiserver reaches etcd
// by function calls (etcd's v3client adapters) instead of gRPC over TLS on
// loopback. The stock apiserver dials one gRPC connection per resource it
// stores (~70): each is a TLS session, HTTP/2 transports on both ends with
// their buffers and ~11 goroutines in all, and every request is marshalled
// twice (measured: ~800 fewer goroutines, ~21 MB less PSS in-process).
// Called in-process, requests and watch events pass as Go values.
//
// The apiserver makes its clients with an unexported hook,
// storagebackend/factory.newETCD3Client, a variable its own tests replace;
// nothing exported lets a caller hand it a client, so the variable is
// reached by linkname. etcd's TLS listener stays up for anything else.

//go:linkname newETCD3Client k8s.io/apiserver/pkg/storage/storagebackend/factory.newETCD3Client
var newETCD3Client func(storagebackend.TransportConfig) (*kubernetes.Client, error)

// localEtcd is the etcd server of this process that the hook serves.
var localEtcd struct {
	sync.Mutex
	server *etcdserver.EtcdServer
	url    string
	dial   func(storagebackend.TransportConfig) (*kubernetes.Client, error) // the stock hook
}

// useLocalEtcd makes every etcd client the apiserver creates for url an
// in-process one of s (the latest s given); a client for any other server
// list dials as before.
func useLocalEtcd(s *etcdserver.EtcdServer, url string) {
	localEtcd.Lock()
	localEtcd.server, localEtcd.url = s, url
	if localEtcd.dial == nil {
		localEtcd.dial = newETCD3Client
		newETCD3Client = localETCD3Client
	}
	localEtcd.Unlock()
	// The apiserver checks per endpoint whether etcd supports watch
	// progress requests (consistent reads from its watch cache need them).
	// An in-process client has no endpoints, so answer for this one here,
	// against the same server.
	etcdfeature.DefaultFeatureSupportChecker.CheckClient(context.Background(),
		localStatus{v3client.New(s), url}, storage.RequestWatchProgress)
}

func localETCD3Client(c storagebackend.TransportConfig) (*kubernetes.Client, error) {
	localEtcd.Lock()
	s, url, dial := localEtcd.server, localEtcd.url, localEtcd.dial
	localEtcd.Unlock()
	if len(c.ServerList) != 1 || c.ServerList[0] != url {
		return dial(c)
	}
	return localEtcdClient(s), nil
}

// localEtcdClient is one client of the apiserver's: its own KV, watcher and
// lessor (the apiserver wraps and closes each client on its own), all on s.
func localEtcdClient(s *etcdserver.EtcdServer) *kubernetes.Client {
	kc := &kubernetes.Client{Client: v3client.New(s)}
	kc.Kubernetes = kc
	return kc
}

// localStatus is an in-process client that names url as its endpoint.
type localStatus struct {
	c   *clientv3.Client
	url string
}

func (l localStatus) Endpoints() []string { return []string{l.url} }

func (l localStatus) Status(ctx context.Context, _ string) (*clientv3.StatusResponse, error) {
	return l.c.Status(ctx, l.url)
}
