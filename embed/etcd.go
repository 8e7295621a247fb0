package embed

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	etcdembed "go.etcd.io/etcd/server/v3/embed"
)

// etcdTickMs is etcd's heartbeat interval; its election timeout is ten.
const etcdTickMs = 20

// etcdServer is etcd hosted in this process, serving mutual TLS on the
// namespace's loopback only.
type etcdServer struct {
	e    *etcdembed.Etcd
	once sync.Once
}

// checkEtcdData opens an existing etcd database read-only first: etcd itself
// panics, in a goroutine nobody can recover, on a damaged one.
func checkEtcdData(dir string) error {
	db := etcdDB(dir)
	if _, err := os.Stat(db); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	b, err := bolt.Open(db, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return fmt.Errorf("the etcd database %s is corrupt or foreign (%v): move %s away to keep it, or run `unetes reset` to start over; nothing was changed", db, err, dir)
	}
	return b.Close()
}

// etcdDB is the database file of etcd's data dir dir.
func etcdDB(dir string) string { return filepath.Join(dir, "member", "snap", "db") }

// etcdHasData tells whether dir holds the database of an earlier run.
func etcdHasData(dir string) bool {
	_, err := os.Stat(etcdDB(dir))
	return err == nil
}

func startEtcd(ctx context.Context, c Config, pkiDir string) (*etcdServer, error) {
	p := func(f string) string { return filepath.Join(pkiDir, f) }
	if err := checkEtcdData(filepath.Join(c.DataDir, "etcd")); err != nil {
		return nil, err
	}
	cfg := etcdembed.NewConfig()
	cfg.Name = "unetes"
	cfg.Dir = filepath.Join(c.DataDir, "etcd")
	client, _ := url.Parse(etcdClientURL)
	peer, _ := url.Parse(etcdPeerURL)
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*client}, []url.URL{*client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
	cfg.ListenMetricsUrls = nil
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// A single member elects itself after a randomized election timeout of
	// one to two election periods, less the ticks etcd fast-forwards: with
	// the defaults (100 ms ticks, 1 s) every start waited 0.1–1 s for it,
	// idle. A 20 ms tick costs ~50 wake-ups a second; no peer can miss one.
	cfg.TickMs, cfg.ElectionMs = etcdTickMs, 10*etcdTickMs
	tls := transport.TLSInfo{CertFile: p("etcd-server.crt"), KeyFile: p("etcd-server.key"), TrustedCAFile: p("etcd-ca.crt"), ClientCertAuth: true}
	cfg.ClientTLSInfo, cfg.PeerTLSInfo = tls, tls
	cfg.Logger = "zap"
	cfg.LogLevel = "warn"
	cfg.LogOutputs = []string{filepath.Join(c.LogDir(), "etcd.log")}
	// Create the log owner-only before etcd opens it (it would use 0644).
	if f, err := os.OpenFile(cfg.LogOutputs[0], os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err == nil {
		f.Chmod(0o600)
		f.Close()
	}
	e, err := etcdembed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start etcd on %s: %w (if the data is corrupt or foreign, move it away or run `unetes reset`)", cfg.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
		return &etcdServer{e: e}, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd failed: %w", err)
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, fmt.Errorf("etcd not ready after 60s (see %s)", cfg.LogOutputs[0])
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
}

// Err reports a failure of the running server.
func (s *etcdServer) Err() <-chan error { return s.e.Err() }

// Close stops etcd and waits for it; again, it does nothing (etcd's own
// Close panics the second time).
func (s *etcdServer) Close() { s.once.Do(s.e.Close) }
