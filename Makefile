# Plinth build and test entry points. Run `make help` for the list.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Expanded once, so every target of one make run uses the same version.
VERSION := $(VERSION)
LDFLAGS := -s -w -X github.com/plinthos/plinth/internal/version.Tag=$(VERSION)
OUT := _out
TOOLS := $(OUT)/tools
# BENCHTIME is the -benchtime of the node runtime benchmarks; keep it at most 5s, the time
# BenchmarkIdleRSS idles, so that it measures once. -v shows the figures next to their aims.
BENCHTIME ?= 3s

.PHONY: setup cluster images images-lock images-repro image-docker image-docker-k8s-prev e2e-k8s-upgrade payload-prev conformance-bins conformance-images conformance conformance-ci conformance-run image-os image-os-k8s image-os-upgrades image-docker-next e2e-qemu-k8s kernel-bump local-node help tools payload build test test-integration e2e e2e-qemu bench bench-build lint fuzz generate check-generate check demo clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

build: ## build plinthctl and machined into _out/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(OUT)/plinthctl ./cmd/plinthctl
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(OUT)/machined ./cmd/machined

test: ## unit tests, with the race detector
	$(GO) test -race -count=1 ./...

test-integration: build ## integration tests: the built plinthctl binary, driven as a user would; the Docker provisioner against the engine
	PLINTH_REQUIRE_DOCKER=1 PLINTHCTL=$(CURDIR)/$(OUT)/plinthctl MACHINED=$(CURDIR)/$(OUT)/machined $(GO) test -race -count=1 -tags integration ./test/integration/... ./internal/provision/docker/

e2e: image-docker image-docker-next ## end-to-end tests: real clusters of node containers in Docker (needs a running Docker engine)
	PLINTH_REQUIRE_DOCKER=1 PLINTHCTL=$(CURDIR)/$(OUT)/plinthctl KUBECTL=$(CURDIR)/$(OUT)/payload/bin/kubectl NODE_IMAGE=$(NODE_IMAGE) NEXT_NODE_IMAGE=$(NODE_IMAGE)-next \
	  $(GO) test -tags e2e -count=1 -timeout 45m -v ./test/e2e/

bench: build ## benchmarks: unit, the node runtime over mTLS, Docker cluster create (1+1 and 3 control planes: time, idle CPU and memory, image size, each beside its aim), a Kubernetes upgrade (upgrade-k8s), QEMU boot, an OS upgrade, a Kubernetes VM to Ready and a cold payload build (long); they print figures and assert nothing
	$(GO) test -run=NONE -bench=. -benchmem ./...
	PLINTHCTL=$(CURDIR)/$(OUT)/plinthctl MACHINED=$(CURDIR)/$(OUT)/machined $(GO) test -v -tags integration -run=NONE -bench=. -benchtime=$(BENCHTIME) ./test/integration/
	$(MAKE) image-docker VERSION=$(VERSION)
	PLINTHCTL=$(CURDIR)/$(OUT)/plinthctl KUBECTL=$(CURDIR)/$(OUT)/payload/bin/kubectl NODE_IMAGE=$(NODE_IMAGE) \
	  $(GO) test -v -tags e2e -run=NONE -bench=ClusterCreate -benchtime=1x -timeout 40m ./test/e2e/
	$(MAKE) image-docker-k8s-prev VERSION=$(VERSION)
	PLINTHCTL=$(CURDIR)/$(OUT)/plinthctl KUBECTL=$(CURDIR)/$(OUT)/payload/bin/kubectl NODE_IMAGE=$(NODE_IMAGE) \
	  PREV_NODE_IMAGE=$(NODE_IMAGE)-k8s-prev PREV_K8S=$(PREV_K8S) K8S=$(call payload_version,k8s.io/kubernetes) \
	  $(GO) test -v -tags e2e -run=NONE -bench=KubernetesUpgrade -benchtime=1x -timeout 40m ./test/e2e/
	$(MAKE) image-os-upgrades VERSION=$(VERSION)
	PLINTHCTL=$(CURDIR)/$(OUT)/plinthctl OS_IMAGE=$(CURDIR)/$(OS_OUT) UPGRADE_NEXT=$(CURDIR)/$(OUT)/os-next/upgrade.tar \
	  $(GO) test -v -tags qemu -run=NONE -bench='Boot|OSUpgrade' -benchtime=1x -timeout 30m ./test/qemu/
	$(MAKE) image-os-k8s VERSION=$(VERSION)
	PLINTHCTL=$(CURDIR)/$(OUT)/plinthctl OS_IMAGE=$(CURDIR)/$(OS_K8S_OUT) OS_K8S_IMAGE=$(CURDIR)/$(OS_K8S_OUT) KUBECTL=$(CURDIR)/$(OUT)/payload/bin/kubectl \
	  $(GO) test -v -tags qemu -run=NONE -bench=KubernetesReady -benchtime=1x -timeout 40m ./test/qemu/
	$(MAKE) bench-build

bench-build: ## time a cold build of the Kubernetes payload (empty Go build cache) and print it beside its aim
	GO=$(GO) hack/bench-build.sh

tools: ## build the pinned developer tools (hack/tools/go.mod) into _out/tools
	cd hack/tools && $(GO) build -o ../../$(TOOLS)/ \
	  honnef.co/go/tools/cmd/staticcheck github.com/bufbuild/buf/cmd/buf \
	  google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc

payload: ## build the Kubernetes payload from source into _out/payload (versions pinned in payload/go.mod)
	$(MAKE) -C payload GO=$(GO) BIN=$(CURDIR)/$(OUT)/payload/bin

payload-prev: ## build the previous Kubernetes minor release's kube binary (payload/prev.mod) into _out/payload-prev, for the upgrade-k8s test
	$(MAKE) -C payload prev GO=$(GO) PREV_BIN=$(CURDIR)/$(OUT)/payload-prev/bin

conformance-bins: ## build the Kubernetes conformance test binaries (payload/conformance.mod) into _out/conformance: e2e.test, ginkgo, agnhost, nnp, sample-apiserver
	$(MAKE) -C payload conformance GO=$(GO) CONFORMANCE_BIN=$(CURDIR)/$(OUT)/conformance

conformance-images: conformance-bins payload ## build the images the conformance tests run (_out/conformance/images.tar) and e2e.test's registry map
	CGO_ENABLED=0 $(GO) build -trimpath -o $(OUT)/imager ./hack/imager
	$(OUT)/imager conformance-images -bin $(OUT)/conformance -payload $(OUT)/payload/bin \
	  -kubernetes-src $$(cd payload && $(GO) list -m -f '{{.Dir}}' k8s.io/kubernetes) \
	  -out $(OUT)/conformance/images.tar -repo-list $(OUT)/conformance/repo-list.yaml

# FOCUS, SERIAL_FOCUS and PROCS narrow or widen the run (hack/conformance.sh).
conformance: image-docker conformance-images ## run the Kubernetes conformance suite offline on an isolated 1+2 Docker cluster; summary in _out/conformance/report-conformance/summary.txt (an hour or more)
	$(MAKE) conformance-run

# The part of the suite CI runs (make check): one or two tests of each area, a few minutes.
CONFORMANCE_CI_FOCUS := (\[sig-network\] DNS should provide DNS for (the cluster|services) |\[sig-network\] Services should serve a basic endpoint from pods |\[sig-network\] Networking Granular Checks: Pods should function for intra-pod communication: http |\[sig-node\] Pods should be submitted and removed |AllowPrivilegeEscalation should not allow privilege escalation when false |\[sig-node\] PreStop should call prestop when killing a pod |Sample API Server using the current Aggregator |AdmissionWebhook \[Privileged:ClusterAdmin\] should be able to deny pod and configmap creation |\[sig-apps\] Deployment RollingUpdateDeployment should delete old pods and create new ones |\[sig-cli\] Kubectl client Kubectl version should check is all data is printed ).*\[Conformance\]

conformance-ci: image-docker conformance-images ## the part of the conformance suite CI runs: 11 tests across networking, nodes, apps, API machinery and kubectl
	$(MAKE) conformance-run FOCUS='$(CONFORMANCE_CI_FOCUS)' SERIAL_FOCUS= PROCS=4 CLUSTER_NAME=conformance-ci CIDR=10.5.61.0/24

conformance-run:
	$(GO) build -o $(OUT)/conformancesummary ./hack/conformancesummary
	NODE_IMAGE=$(NODE_IMAGE) K8S_VERSION=$(call payload_version,k8s.io/kubernetes) PLINTHCTL=$(OUT)/plinthctl \
	  KUBECTL=$(OUT)/payload/bin/kubectl SUMMARY=$(OUT)/conformancesummary OUT=$(OUT)/conformance hack/conformance.sh

lint: tools ## gofmt, go vet, staticcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags integration ./test/...
	$(GO) vet -tags e2e ./test/e2e/
	$(TOOLS)/staticcheck ./...
	$(TOOLS)/staticcheck -tags integration ./test/...
	$(TOOLS)/staticcheck -tags e2e ./test/e2e/
	$(GO) vet -tags qemu ./test/qemu/
	$(TOOLS)/staticcheck -tags qemu ./test/qemu/

# Fuzz budgets are execution counts (about 20 s each on 2 cores), not durations:
# a duration -fuzztime races Go 1.26's fuzz coordinator at the deadline and fails
# with a bare "context deadline exceeded" and no crasher (go.dev/issue/75804,
# fixed in Go 1.27). Override with e.g. make fuzz FUZZ_LOAD=60s to explore longer.
FUZZ_LOAD ?= 100000x
FUZZ_APPLY ?= 240000x
FUZZ_RESOLVE ?= 700000x

fuzz: ## run every fuzz target for a fixed number of executions (about 20 s each)
	$(GO) test -run=NONE -fuzz=FuzzLoad -fuzztime=$(FUZZ_LOAD) ./pkg/config/
	$(GO) test -run=NONE -fuzz=FuzzApply -fuzztime=$(FUZZ_APPLY) ./pkg/config/patch/
	$(GO) test -run=NONE -fuzz=FuzzResolve -fuzztime=$(FUZZ_RESOLVE) ./internal/fileapi/

generate: tools ## regenerate code and docs derived from the sources (API from api/*.proto, config and CLI docs)
	cd api && ../$(TOOLS)/buf lint && ../$(TOOLS)/buf generate
	$(GO) run ./hack/docgen

check-generate: generate ## fail when generated files are out of date
	@git diff --exit-code -- pkg/api pkg/config/zz_docs.go docs/reference/config.md docs/cli.md || \
	  { echo "generated files are out of date: run make generate and commit"; exit 1; }

check: setup lint check-generate test test-integration fuzz e2e e2e-k8s-upgrade e2e-qemu e2e-qemu-k8s conformance-ci ## everything CI runs

demo: build ## generate and validate a demo cluster's configuration in _out/demo (no cluster is started)
	@mkdir -p $(OUT)/demo
	$(OUT)/plinthctl gen config demo https://10.5.0.2:6443 --output-dir $(OUT)/demo --force
	$(OUT)/plinthctl validate --config $(OUT)/demo/controlplane.yaml --mode metal
	$(OUT)/plinthctl validate --config $(OUT)/demo/worker.yaml --mode metal

local-node: build ## run a control-plane node in local mode in the foreground (state in _out/local)
	@mkdir -p $(OUT)/local
	@[ -f $(OUT)/local/cfg/controlplane.yaml ] || $(OUT)/plinthctl gen config local https://127.0.0.1:6443 --output-dir $(OUT)/local/cfg
	@$(OUT)/plinthctl --plinthconfig $(OUT)/local/cfg/plinthconfig config endpoint 127.0.0.1:50000 >/dev/null
	@echo "node API on 127.0.0.1:50000; in another shell: export PLINTHCONFIG=$(CURDIR)/$(OUT)/local/cfg/plinthconfig; $(OUT)/plinthctl services"
	exec $(OUT)/machined --mode local --state-dir $(CURDIR)/$(OUT)/local/state --config $(OUT)/local/cfg/controlplane.yaml

IMAGE_TAG ?= $(VERSION)
NODE_IMAGE ?= plinth/node:$(IMAGE_TAG)
payload_version = $(shell cd payload && $(GO) list -m -f '{{.Version}}' $(1))

# IMAGES_LOCK=update records this build in payload/images.lock instead of checking it.
IMAGES_LOCK ?= check

images: build payload ## build the image bundle (_out/images/bundle.tar); fails if it differs from payload/images.lock
	CGO_ENABLED=0 $(GO) build -trimpath -o $(OUT)/imager ./hack/imager
	$(OUT)/imager bundle -bin $(OUT)/payload/bin -out $(OUT)/images/bundle.tar -lock payload/images.lock $(if $(filter update,$(IMAGES_LOCK)),-update-lock) \
	  -kubernetes $(call payload_version,k8s.io/kubernetes) -etcd $(call payload_version,go.etcd.io/etcd/server/v3) \
	  -coredns $(call payload_version,github.com/coredns/coredns) -flannel $(call payload_version,github.com/flannel-io/flannel)

images-lock: ## deliberately rewrite payload/images.lock (host inputs and image digests) from a build of the bundle
	$(MAKE) images IMAGES_LOCK=update VERSION=$(VERSION)

images-repro: ## build the bundle and node image in two git worktrees of HEAD at different paths and compare digests (docs/os-image.md)
	hack/images-repro.sh

image-docker: images ## build the node image and load it into the local Docker engine as $(NODE_IMAGE)
	hack/start-docker.sh
	$(OUT)/imager node -bin $(OUT)/payload/bin -machined $(OUT)/machined -bundle $(OUT)/images/bundle.tar -lock payload/images.lock -tag $(NODE_IMAGE) -out $(OUT)/images/node.tar
	docker load -i $(OUT)/images/node.tar

image-docker-next: image-docker ## the node image of the next version, $(NODE_IMAGE)-next (its machined says $(VERSION)-next): what the e2e upgrades a cluster to
	mkdir -p $(OUT)/next
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X github.com/plinthos/plinth/internal/version.Tag=$(VERSION)-next" -o $(OUT)/next/machined ./cmd/machined
	printf 'FROM $(NODE_IMAGE)\nCOPY machined /usr/bin/machined\n' | DOCKER_BUILDKIT=0 docker build -q -t $(NODE_IMAGE)-next -f - $(OUT)/next

# PREV_K8S is the previous Kubernetes minor release (payload/prev.mod) that upgrade-k8s is
# tested from.
PREV_K8S = $(shell cd payload && $(GO) list -modfile=prev.mod -m -f '{{.Version}}' k8s.io/kubernetes)

image-docker-k8s-prev: image-docker payload-prev ## the node image that also holds the previous Kubernetes release's images, $(NODE_IMAGE)-k8s-prev: what the upgrade-k8s e2e creates a cluster of
	CGO_ENABLED=0 $(GO) build -trimpath -o $(OUT)/imager ./hack/imager
	mkdir -p $(OUT)/k8s-prev
	$(OUT)/imager kube-bundle -bin $(OUT)/payload-prev/bin -kubernetes $(PREV_K8S) -out $(OUT)/k8s-prev/kubernetes-$(PREV_K8S).tar
	printf 'FROM $(NODE_IMAGE)\nCOPY kubernetes-$(PREV_K8S).tar /usr/share/plinth/images/\n' | DOCKER_BUILDKIT=0 docker build -q -t $(NODE_IMAGE)-k8s-prev -f - $(OUT)/k8s-prev

e2e-k8s-upgrade: image-docker-k8s-prev ## end-to-end: a Docker cluster of the previous Kubernetes minor release upgraded with plinthctl upgrade-k8s
	PLINTH_REQUIRE_DOCKER=1 PLINTHCTL=$(CURDIR)/$(OUT)/plinthctl KUBECTL=$(CURDIR)/$(OUT)/payload/bin/kubectl NODE_IMAGE=$(NODE_IMAGE) \
	  PREV_NODE_IMAGE=$(NODE_IMAGE)-k8s-prev PREV_K8S=$(PREV_K8S) K8S=$(call payload_version,k8s.io/kubernetes) \
	  $(GO) test -tags e2e -count=1 -timeout 30m -v -run 'TestUpgradeKubernetes' ./test/e2e/

OS_OUT := $(OUT)/os

image-os: ## build the OS image a VM boots into _out/os: vmlinuz, initramfs.img, rootfs.squashfs, disk.raw, manifest.json (kernel pinned in boot/kernel.lock)
	@[ -d cmd/plinth-init ] || { echo "image-os: cmd/plinth-init does not exist: the initramfs needs the stage-0 init" >&2; exit 1; }
	@echo "image-os: building the stage-0 init, machined and osbuild"
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(OUT)/plinth-init ./cmd/plinth-init
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(OUT)/machined ./cmd/machined
	CGO_ENABLED=0 $(GO) build -trimpath -o $(OUT)/osbuild ./hack/osbuild
	$(OUT)/osbuild -lock boot/kernel.lock -cache $(OUT)/cache -out $(OS_OUT) -init $(OUT)/plinth-init -machined $(OUT)/machined -version $(VERSION)

OS_K8S_OUT := $(OUT)/os-k8s

image-os-k8s: images ## build the OS image with the Kubernetes payload into _out/os-k8s (needs make payload's binaries)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(OUT)/plinth-init ./cmd/plinth-init
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(OUT)/machined ./cmd/machined
	CGO_ENABLED=0 $(GO) build -trimpath -o $(OUT)/osbuild ./hack/osbuild
	$(OUT)/osbuild -profile k8s -payload $(OUT)/payload/bin -bundle $(OUT)/images/bundle.tar -lock boot/kernel.lock -cache $(OUT)/cache -out $(OS_K8S_OUT) -init $(OUT)/plinth-init -machined $(OUT)/machined -version $(VERSION)

e2e-qemu-k8s: build image-os-k8s ## one control plane of the Kubernetes profile in a QEMU VM, bootstrapped to Ready and CoreDNS running (a few minutes under TCG)
	PLINTHCTL=$(CURDIR)/$(OUT)/plinthctl OS_IMAGE=$(CURDIR)/$(OS_K8S_OUT) OS_K8S_IMAGE=$(CURDIR)/$(OS_K8S_OUT) KUBECTL=$(CURDIR)/$(OUT)/payload/bin/kubectl $(GO) test -tags qemu -count=1 -timeout 40m -v -run Kubernetes ./test/qemu/

image-os-upgrades: image-os ## the upgrade artifacts the QEMU upgrade test installs: the next version, a build whose init exits, one whose machined exits, one whose machined hangs (_out/os-next, _out/os-broken, _out/os-broken-machined, _out/os-hang)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X github.com/plinthos/plinth/internal/version.Tag=$(VERSION)-next" -o $(OUT)/machined-next ./cmd/machined
	$(OUT)/osbuild -artifact-only -lock boot/kernel.lock -cache $(OUT)/cache -out $(OUT)/os-next -init $(OUT)/plinth-init -machined $(OUT)/machined-next -version $(VERSION)-next
	CGO_ENABLED=0 $(GO) build -trimpath -o $(OUT)/badinit ./test/qemu/testdata/badinit
	$(OUT)/osbuild -artifact-only -lock boot/kernel.lock -cache $(OUT)/cache -out $(OUT)/os-broken -init $(OUT)/badinit -machined $(OUT)/machined -version $(VERSION)-broken
	$(OUT)/osbuild -artifact-only -lock boot/kernel.lock -cache $(OUT)/cache -out $(OUT)/os-broken-machined -init $(OUT)/plinth-init -machined $(OUT)/badinit -version $(VERSION)-broken-machined
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X main.mode=hang" -o $(OUT)/hanginit ./test/qemu/testdata/badinit
	$(OUT)/osbuild -artifact-only -lock boot/kernel.lock -cache $(OUT)/cache -out $(OUT)/os-hang -init $(OUT)/plinth-init -machined $(OUT)/hanginit -version $(VERSION)-hang

e2e-qemu: build image-os image-os-upgrades ## boot the OS image in QEMU VMs and drive them through the node API (needs qemu-system-x86; the local cluster test needs root)
	PLINTHCTL=$(CURDIR)/$(OUT)/plinthctl OS_IMAGE=$(CURDIR)/$(OS_OUT) UPGRADE_NEXT=$(CURDIR)/$(OUT)/os-next/upgrade.tar UPGRADE_BROKEN=$(CURDIR)/$(OUT)/os-broken/upgrade.tar \
	  UPGRADE_BROKEN_MACHINED=$(CURDIR)/$(OUT)/os-broken-machined/upgrade.tar UPGRADE_HANG=$(CURDIR)/$(OUT)/os-hang/upgrade.tar \
	  $(GO) test -tags qemu -count=1 -timeout 30m -v ./test/qemu/

kernel-bump: ## pin the newest Debian kernel apt offers in boot/kernel.lock (run apt-get update first)
	CGO_ENABLED=0 $(GO) run ./hack/osbuild -bump -lock boot/kernel.lock

CLUSTER_ARGS ?=

setup: ## install what building and testing need (Debian packages, the Docker engine) and start dockerd; says what it does
	hack/setup.sh

cluster: setup image-docker ## the main command: build what is missing and bring up a local cluster (1 control plane, 1 worker) in Docker
	$(OUT)/plinthctl cluster create --image $(NODE_IMAGE) $(CLUSTER_ARGS)
	@echo
	@echo "kubectl (built from source) is $(OUT)/payload/bin/kubectl: try  $(OUT)/payload/bin/kubectl get nodes"
	@echo "plinthctl is $(OUT)/plinthctl: try  $(OUT)/plinthctl version;  remove the cluster with  $(OUT)/plinthctl cluster destroy --name plinth"

clean: ## remove build outputs
	rm -rf $(OUT)
