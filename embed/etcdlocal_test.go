package embed

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"
	"k8s.io/apiserver/pkg/storage"
	etcdfeature "k8s.io/apiserver/pkg/storage/feature"
	"k8s.io/apiserver/pkg/storage/storagebackend"
)

// TestLocalEtcdClient: with the hook set, the apiserver's client factory
// returns clients that read, write and watch the in-process etcd, the
// watch-progress support the apiserver's watch cache asks for is known, and
// any other server list still goes to the stock dialer.
func TestLocalEtcdClient(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig("etcdlocal", filepath.Join(dir, "data"), filepath.Join(dir, "state"), net.ParseIP("127.0.0.1"), nil)
	if err := setupKlog(cfg.LogDir()); err != nil {
		t.Fatal(err)
	}
	pc, err := cfg.PKIConfig()
	if err != nil {
		t.Fatal(err)
	}
	pki, err := EnsurePKI(pc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := startEtcd(ctx, cfg, pki.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	useLocalEtcd(e.e.Server, etcdClientURL)
	c, err := newETCD3Client(storagebackend.TransportConfig{ServerList: []string{etcdClientURL}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.ActiveConnection() != nil {
		t.Fatal("the client has a gRPC connection: want an in-process one")
	}
	wch := c.Watch(ctx, "/registry/test/", clientv3.WithPrefix())
	if _, err := c.Kubernetes.OptimisticPut(ctx, "/registry/test/a", []byte("one"), 0, kubernetes.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Kubernetes.Get(ctx, "/registry/test/a", kubernetes.GetOptions{})
	if err != nil || got.KV == nil || string(got.KV.Value) != "one" {
		t.Fatalf("Get = %+v, %v; want the value written", got, err)
	}
	select {
	case w := <-wch:
		if len(w.Events) != 1 || string(w.Events[0].Kv.Key) != "/registry/test/a" {
			t.Fatalf("watch event %+v; want the put of /registry/test/a", w)
		}
	case <-ctx.Done():
		t.Fatal("no watch event for the put")
	}
	for !etcdfeature.DefaultFeatureSupportChecker.Supports(storage.RequestWatchProgress) {
		if ctx.Err() != nil {
			t.Fatal("watch progress requests are not known to be supported: the watch cache would not serve consistent reads")
		}
		time.Sleep(20 * time.Millisecond)
	}

	localEtcd.Lock()
	stock := localEtcd.dial
	errDialed := errors.New("dialed")
	localEtcd.dial = func(storagebackend.TransportConfig) (*kubernetes.Client, error) { return nil, errDialed }
	localEtcd.Unlock()
	defer func() { localEtcd.Lock(); localEtcd.dial = stock; localEtcd.Unlock() }()
	if _, err := newETCD3Client(storagebackend.TransportConfig{ServerList: []string{"https://127.0.0.1:1"}}); !errors.Is(err, errDialed) {
		t.Fatalf("another server list: %v; want the stock dialer", err)
	}
}
