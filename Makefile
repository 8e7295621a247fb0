# unetes — build, run, test, bench.
#
#   make run     install missing host packages (as root), build, run `unetes run` (Kubernetes) in the foreground
#   make test    one-time host setup (as root), unit tests, then the end-to-end suite as an unprivileged user
#   make bench   the benchmark table (NAT throughput against host loopback, slirp4netns and pasta)
#   make vm-test the cgroup v2 test: a Debian guest under QEMU (no KVM needed) runs unetes under systemd with
#                delegated cgroups and checks that pod limits are enforced (testing/vm; not part of make test)

GO      ?= go
BIN     := bin/unetes
PROGRAM := bin/unetes-program
LAUNCHER_PAYLOAD := cmd/launcher/payload
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
GVISOR  := $(shell $(GO) list -m -f '{{.Version}}' gvisor.dev/gvisor 2>/dev/null)
RK      := $(shell $(GO) list -m -f '{{.Version}}' github.com/rootless-containers/rootlesskit/v3 2>/dev/null)
K8S     := $(shell $(GO) list -m -f '{{.Version}}' k8s.io/kubernetes 2>/dev/null)
CONTAINERD := $(shell $(GO) list -m -f '{{.Version}}' github.com/containerd/containerd/v2 2>/dev/null)
RUNC_VERSION := v1.5.3
CNI_VERSION  := v1.10.0
# Moby (dockerd), built in its own module (cmd/dockerd, which pins this
# version): its swarmkit needs etcd's raft 3.6, which cannot be linked beside
# this Kubernetes (moby/swarmkit#3240).
MOBY_VERSION := $(shell cd cmd/dockerd && $(GO) list -m -f '{{.Version}}' github.com/moby/moby/v2 2>/dev/null)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.gvisorVersion=$(GVISOR) -X main.rkVersion=$(RK) \
	-X main.containerdVersion=$(CONTAINERD) -X main.runcVersion=$(RUNC_VERSION) -X main.cniVersion=$(CNI_VERSION) -X main.mobyVersion=$(MOBY_VERSION) \
	-X k8s.io/component-base/version.gitVersion=$(K8S) -X k8s.io/component-base/version.gitMajor=$(word 2,$(subst ., ,$(subst v,v ,$(K8S)))) \
	-X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(K8S))) -X k8s.io/component-base/version.gitTreeState=clean \
	-X github.com/containerd/containerd/v2/version.Version=$(CONTAINERD)

# Helper binaries embedded in unetes (embed/helpers): runc needs cgo and
# libseccomp, linked static; the CNI plugins, pause, containerd's runc shim
# (one per pod: small on its own, where unetes as the shim costs ~20 MB each)
# and the runc wrapper (run several times per container: unetes would spend
# ~0.3 s initialising at each) are pure Go.
HELPERS     := embed/helpers
CNI_PLUGINS := main/bridge ipam/host-local main/loopback meta/portmap meta/tuning
# The stamp names the plugins too, so adding one rebuilds the helpers.
HELPERS_STAMP := $(HELPERS)/.built-runc-$(RUNC_VERSION)-cni-$(CNI_VERSION)-$(subst $() ,+,$(notdir $(CNI_PLUGINS)))
HELPER_NAMES := runc runc-wrapper containerd-shim-runc-v2 bridge host-local loopback portmap tuning pause dockerd
# dockerd uses the instance's containerd (no embedded one) and its
# snapshotters (no graph drivers of its own for btrfs or zfs).
DOCKERD_TAGS := no_embedded_containerd exclude_graphdriver_btrfs exclude_graphdriver_zfs netgo osusergo
# What unetes embeds: the helpers as one tar compressed with zstd's long
# window (across the programs, the Go runtime is mostly the same bytes), and
# their sums, which tell a start whether its installed helpers are current.
PAYLOAD     := embed/payload

# The unprivileged users the end-to-end tests run unetes as.
TEST_USER    ?= unetes-test
NOSUBID_USER ?= unetes-nosubid

# Host packages: what unetes needs (uidmap, iproute2, iptables/nftables) and
# what the tests and benchmarks use (busybox-static, iperf3, slirp4netns, passt).
RUN_PKGS  := uidmap iproute2 iptables nftables
BUILD_PKGS := gcc libc6-dev libseccomp-dev pkg-config zstd
TEST_PKGS := $(RUN_PKGS) $(BUILD_PKGS) busybox-static iperf3 slirp4netns passt socat util-linux procps docker.io docker-compose

ROOT := $(shell id -u)

.PHONY: all build build-deps helpers run test unit e2e bench vm-test vm-deps deps test-deps setup clean

all: build

# bin/unetes is the launcher (cmd/launcher): the program (cmd/unetes, built
# as bin/unetes-program) compressed inside it, unpacked once per user into
# the cache dir at its first run. The download is ~80 MB instead of ~220.
build: build-deps $(PAYLOAD)/helpers.sum
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(PROGRAM) ./cmd/unetes
	zstd -q -f -9 --long -T0 $(PROGRAM) -o $(LAUNCHER_PAYLOAD)/unetes.zst
	echo "$$(sha256sum < $(PROGRAM) | cut -d' ' -f1) $$(stat -c %s $(PROGRAM))" > $(LAUNCHER_PAYLOAD)/unetes.sum
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN) ./cmd/launcher

helpers: $(PAYLOAD)/helpers.sum

$(HELPERS_STAMP): | build-deps
	CGO_ENABLED=1 GOBIN=$(CURDIR)/$(HELPERS) $(GO) install -trimpath -tags 'seccomp netgo osusergo' \
	  -ldflags '-s -w -extldflags -static' github.com/opencontainers/runc@$(RUNC_VERSION)
	CGO_ENABLED=0 GOBIN=$(CURDIR)/$(HELPERS) $(GO) install -trimpath -ldflags '-s -w' \
	  $(foreach p,$(CNI_PLUGINS),github.com/containernetworking/plugins/plugins/$(p)@$(CNI_VERSION))
	rm -f $(HELPERS)/.built-runc-*; touch $@

$(HELPERS)/containerd-shim-runc-v2: go.mod go.sum
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $@ github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2

# cmd/dockerd is its own module (moby's daemon runner plus unetes' memory
# settling); its go.mod pins moby.
$(HELPERS)/dockerd: cmd/dockerd/go.mod cmd/dockerd/go.sum $(wildcard cmd/dockerd/*.go)
	cd cmd/dockerd && CGO_ENABLED=0 $(GO) build -trimpath -tags '$(DOCKERD_TAGS)' \
	  -ldflags '-s -w -X github.com/moby/moby/v2/dockerversion.Version=$(MOBY_VERSION) -X github.com/moby/moby/v2/dockerversion.GitCommit=$(MOBY_VERSION)' \
	  -o $(CURDIR)/$@ .

$(HELPERS)/runc-wrapper: cmd/runcwrap/main.go
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $@ ./cmd/runcwrap

$(PAYLOAD)/helpers.sum: $(HELPERS_STAMP) $(HELPERS)/dockerd $(HELPERS)/pause $(HELPERS)/containerd-shim-runc-v2 $(HELPERS)/runc-wrapper
	tar -C $(HELPERS) --owner=0 --group=0 --numeric-owner --mtime=@0 -cf $(PAYLOAD)/helpers.tar $(HELPER_NAMES)
	zstd -q -f -19 --long -T0 --rm $(PAYLOAD)/helpers.tar -o $(PAYLOAD)/helpers.tar.zst
	cd $(HELPERS) && sha256sum $(HELPER_NAMES) > $(CURDIR)/$@.tmp
	mv $@.tmp $@

$(HELPERS)/pause: cmd/pause/main.go
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $@ ./cmd/pause

run: deps build
	./$(BIN) run

test: setup build unit e2e

# Tests build with the same flags as `build` (-trimpath) so they reuse its
# compiled Kubernetes packages instead of compiling them a second time.
unit: $(PAYLOAD)/helpers.sum
	CGO_ENABLED=0 $(GO) test -trimpath -count=1 ./cmd/... ./netstack/... ./nsinit/... ./hostfwd/... ./embed/...

e2e:
	CGO_ENABLED=0 $(GO) test -trimpath -count=1 -v -timeout 30m ./testing/ -unetes-bin=$(CURDIR)/$(BIN) -test-user=$(TEST_USER) -nosubid-user=$(NOSUBID_USER)

bench: setup build
	CGO_ENABLED=0 $(GO) run ./testing/benchtable -unetes-bin=$(CURDIR)/$(BIN) -test-user=$(TEST_USER)

# The cgroup v2 guest: Debian's QEMU and debootstrap on the host; the guest's
# packages come from Debian's mirror through debootstrap.
VM_PKGS := debootstrap qemu-system-x86 e2fsprogs busybox-static

vm-deps:
	@$(MAKE) --no-print-directory install-pkgs PKGS="$(VM_PKGS)"

vm-test: vm-deps build
	GO=$(GO) testing/vm/vm.sh

# deps installs missing host packages when run as root; otherwise it names them.
deps:
	@$(MAKE) --no-print-directory install-pkgs PKGS="$(RUN_PKGS) $(BUILD_PKGS)"

# build-deps: what building needs (cgo and libseccomp for runc), installed as root.
build-deps:
	@$(MAKE) --no-print-directory install-pkgs PKGS="$(BUILD_PKGS)"

test-deps:
	@$(MAKE) --no-print-directory install-pkgs PKGS="$(TEST_PKGS)"

install-pkgs:
	@missing=""; for p in $(PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$(ROOT)" != 0 ]; then echo "missing host packages:$$missing — run: sudo apt-get install$$missing"; exit 1; fi; \
	echo "installing:$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y -qq $$missing >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq $$missing; }

# setup is the one-time root set-up of a test host: packages, the test users
# (one with sub-IDs, one without), a usable /dev/net/tun, and ping sockets for
# every group (systemd's default; lets the NAT forward ping).
setup: test-deps
	@if [ "$(ROOT)" != 0 ]; then \
	  id $(TEST_USER) >/dev/null 2>&1 && id $(NOSUBID_USER) >/dev/null 2>&1 && [ -r /dev/net/tun -a -w /dev/net/tun ] \
	  || { echo "make test needs a one-time root set-up: run 'sudo make setup'"; exit 1; }; exit 0; fi
	@id $(TEST_USER) >/dev/null 2>&1 || useradd -m -s /bin/sh $(TEST_USER)
	@grep -q '^$(TEST_USER):' /etc/subuid || usermod --add-subuids 300000-365535 $(TEST_USER)
	@grep -q '^$(TEST_USER):' /etc/subgid || usermod --add-subgids 300000-365535 $(TEST_USER)
	@id $(NOSUBID_USER) >/dev/null 2>&1 || useradd -m -s /bin/sh -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 $(NOSUBID_USER)
	@sed -i '/^$(NOSUBID_USER):/d' /etc/subuid /etc/subgid
	@chmod 0666 /dev/net/tun
	@sysctl -qw net.ipv4.ping_group_range="0 2147483647"

clean:
	rm -rf bin; find $(HELPERS) $(PAYLOAD) $(LAUNCHER_PAYLOAD) -mindepth 1 ! -name README.md -delete
