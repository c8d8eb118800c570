# keyless — build, test and run the local control plane.
# Go 1.27.4 is fetched through the module proxy when the machine's Go is older.
export GOTOOLCHAIN := auto
SHELL := /usr/bin/env bash

include internal/version/versions.env

K8S_BIN       ?= $(CURDIR)/bin/k8s
GITEA         ?= $(CURDIR)/bin/gitea
OCI_REGISTRY  ?= $(CURDIR)/bin/registry
VERSITYGW     ?= $(CURDIR)/bin/versitygw
KEYLESS       := $(CURDIR)/bin/keyless
KEYLESS_DEV   := $(CURDIR)/bin/keyless-dev
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS       := -X github.com/keyless-cd/keyless/internal/version.version=$(VERSION)
# The build tags of every keyless binary (internal/version.BuildTags says why).
BUILD_TAGS    := kustomize_disable_go_plugin_support
GO_TEST_FLAGS ?= -timeout 30m
TOOLS_BIN     := $(CURDIR)/bin/tools
# Tools are built from hack/tools/go.mod into bin/tools and run from there: run
# through `go tool -modfile`, they would load this module's packages with the
# tools' module graph.
TOOL_BUILD    := go build -modfile=$(CURDIR)/hack/tools/go.mod -o $(TOOLS_BIN)/

CONTROLLER_GEN := $(TOOLS_BIN)/controller-gen
GOLANGCI_LINT  := $(TOOLS_BIN)/golangci-lint
# The sops CLI, built from SOPS's own module: the interoperability test
# encrypts with it and decrypts with keyless, and the other way round.
SOPS           := $(TOOLS_BIN)/sops
# The reference CLIs of the render-equality test (internal/render/reference_test.go):
# the real `helm template`, `kustomize build` and `jsonnet` (go-jsonnet's CLI),
# pinned in hack/reftools/go.mod (apart from hack/tools so their Kubernetes
# libraries move no other tool).
REFTOOL_BUILD  := go build -modfile=$(CURDIR)/hack/reftools/go.mod -o $(TOOLS_BIN)/
HELM           := $(TOOLS_BIN)/helm
KUSTOMIZE      := $(TOOLS_BIN)/kustomize
JSONNET        := $(TOOLS_BIN)/jsonnet
# The SBOM generator of make release (CycloneDX's cyclonedx-gomod), pinned in
# hack/sbom/go.mod.
CYCLONEDX_GOMOD := $(TOOLS_BIN)/cyclonedx-gomod

.PHONY: release release-publish test-deps reftools ui-screenshots gitea registry versitygw sigstore image bench-forge bench-bump bench-controller bench-render generate all build k8s-bins demo cluster test unit vet lint fuzz hack-mods clean help

all: build

help: ## Show the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## Build bin/keyless (the product) and bin/keyless-dev (local cluster, dev issuer, demo)
	go build -tags $(BUILD_TAGS) -ldflags "$(LDFLAGS)" -o $(KEYLESS) ./cmd/keyless
	go build -tags $(BUILD_TAGS) -ldflags "$(LDFLAGS)" -o $(KEYLESS_DEV) ./cmd/keyless-dev

$(CONTROLLER_GEN): hack/tools/go.mod
	$(TOOL_BUILD) sigs.k8s.io/controller-tools/cmd/controller-gen

$(GOLANGCI_LINT): hack/tools/go.mod
	$(TOOL_BUILD) github.com/golangci/golangci-lint/v2/cmd/golangci-lint

$(SOPS): hack/tools/go.mod
	$(TOOL_BUILD) github.com/getsops/sops/v3/cmd/sops

$(HELM): hack/reftools/go.mod
	$(REFTOOL_BUILD) helm.sh/helm/v4/cmd/helm

$(KUSTOMIZE): hack/reftools/go.mod
	$(REFTOOL_BUILD) sigs.k8s.io/kustomize/kustomize/v5

$(JSONNET): hack/reftools/go.mod
	$(REFTOOL_BUILD) github.com/google/go-jsonnet/cmd/jsonnet

$(CYCLONEDX_GOMOD): hack/sbom/go.mod
	go build -modfile=$(CURDIR)/hack/sbom/go.mod -o $(TOOLS_BIN)/ github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod

reftools: $(HELM) $(KUSTOMIZE) $(JSONNET) ## Build the reference helm, kustomize and jsonnet CLIs (hack/reftools/go.mod) into bin/tools

generate: $(CONTROLLER_GEN) ## Regenerate deepcopy code and the CRD (api/ → config/crd/), then the chart and kustomize base that carry it (make chart)
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	go run ./hack/chart --version $(CHART_VERSION)

gitea: ## Build Gitea, the real forge of the forge tests, into bin/gitea (skips it when built)
	@hack/build-gitea.sh $(GITEA)

sigstore: ## Build cosign, fulcio and timestamp-server (Sigstore's own, from the module proxy) into bin/tools for the signing tests (skips what is built)
	@hack/build-sigstore.sh $(TOOLS_BIN)

versitygw: ## Build the Versity S3 Gateway, the real S3 object store of the ledger sink tests, into bin/versitygw (skips it when built)
	@hack/build-versitygw.sh $(VERSITYGW)

registry: ## Build the CNCF Distribution registry, the real OCI registry of the chart tests, into bin/registry (skips it when built)
	@hack/build-registry.sh $(OCI_REGISTRY)

k8s-bins: ## Build the local control plane into bin/k8s (skips what is already built)
	@hack/build-k8s-bins.sh $(K8S_BIN)

REGISTRY  ?=
IMAGE_TAG ?= $(VERSION)
image: ## The controller image (linux/amd64+arm64) without Docker: an OCI layout in bin/image, or pushed with REGISTRY=host:port/keyless
	go run ./hack/image --version $(VERSION) $(if $(REGISTRY),--push $(REGISTRY):$(IMAGE_TAG),--out $(CURDIR)/bin/image)

CHART_VERSION ?= v0.0.0
.PHONY: chart
chart: ## Regenerate the Helm chart charts/keyless and the kustomize base config/kustomize from the install's objects (CHART_VERSION tags the base's image)
	go run ./hack/chart --version $(CHART_VERSION)

# make release VERSION=vX.Y.Z: archives, SBOMs, checksums, the image (OCI
# layout) and its digest, the chart, in dist/ — nothing pushed (a dry run);
# make release-publish VERSION=vX.Y.Z then pushes the image and the chart to
# RELEASE_REGISTRY (hack/release; docs/install.md).
RELEASE_REGISTRY ?= ghcr.io/keyless-cd
PLATFORMS        ?= linux/amd64,linux/arm64,darwin/amd64,darwin/arm64
release: $(CYCLONEDX_GOMOD) ## Build release VERSION=vX.Y.Z into dist/ (PLATFORMS, RELEASE_REGISTRY); pushes nothing
	go run ./hack/release --version $(VERSION) --dist $(CURDIR)/dist --platforms $(PLATFORMS) --registry $(RELEASE_REGISTRY) --sbom-tool $(CYCLONEDX_GOMOD)

release-publish: ## Push dist/'s image and chart to RELEASE_REGISTRY (credentials: RELEASE_REGISTRY_USER/PASSWORD or docker login)
	go run ./hack/release --publish --version $(VERSION) --dist $(CURDIR)/dist --registry $(RELEASE_REGISTRY)

CLUSTER_FLAGS ?=
demo: build k8s-bins ## The whole credential-free pipeline, end to end, on this machine (DEMO_FLAGS="--keep" to explore)
	$(KEYLESS_DEV) demo --assets $(K8S_BIN) $(DEMO_FLAGS)

cluster: build k8s-bins ## Run a local Kubernetes control plane until Ctrl-C (extra flags: CLUSTER_FLAGS="...")
	$(KEYLESS_DEV) localcluster up --assets $(K8S_BIN) $(CLUSTER_FLAGS)

test-deps: ## Install the system packages the tests need that this machine lacks (gcc, prometheus, openssh-server, chromium; apt-get)
	@hack/install-test-deps.sh

test: test-deps k8s-bins gitea registry versitygw sigstore $(SOPS) $(HELM) $(KUSTOMIZE) $(JSONNET) $(CYCLONEDX_GOMOD) vet lint ## Install and build what is missing, then vet, lint and run every test
	KUBEBUILDER_ASSETS=$(K8S_BIN) KEYLESS_GITEA=$(GITEA) KEYLESS_REGISTRY=$(OCI_REGISTRY) KEYLESS_VERSITYGW=$(VERSITYGW) KEYLESS_SIGSTORE_BIN=$(TOOLS_BIN) KEYLESS_SOPS=$(SOPS) KEYLESS_HELM=$(HELM) KEYLESS_KUSTOMIZE=$(KUSTOMIZE) KEYLESS_JSONNET=$(JSONNET) go test $(GO_TEST_FLAGS) ./...

unit: ## Run the tests without building anything first
	KUBEBUILDER_ASSETS=$(K8S_BIN) KEYLESS_GITEA=$(GITEA) KEYLESS_REGISTRY=$(OCI_REGISTRY) KEYLESS_VERSITYGW=$(VERSITYGW) KEYLESS_SIGSTORE_BIN=$(TOOLS_BIN) KEYLESS_SOPS=$(SOPS) KEYLESS_HELM=$(HELM) KEYLESS_KUSTOMIZE=$(KUSTOMIZE) KEYLESS_JSONNET=$(JSONNET) go test $(GO_TEST_FLAGS) ./...

# The second line is the darwin compile check: the keyless binary's whole
# import graph and the packages with OS-specific files, type-checked (so
# compiled, not linked) for darwin/arm64. Cold it compiles every dependency
# for darwin once (docs/install.md gives the measured cost); warm, seconds.
vet: ## go vet, and the darwin compile check (GOOS=darwin go vet of cmd/keyless)
	go vet ./...
	GOOS=darwin GOARCH=arm64 go vet ./cmd/keyless/ ./internal/renderproc/ ./internal/localcluster/

lint: $(GOLANGCI_LINT) ## golangci-lint (pinned in hack/tools/go.mod)
	$(GOLANGCI_LINT) run ./...

FUZZTIME ?= 30s
fuzz: ## Run each fuzz target for FUZZTIME (make test runs their seed corpora)
	go test ./internal/render -run '^$$' -fuzz FuzzDecodeObjects -fuzztime $(FUZZTIME)
	go test ./internal/bump -run '^$$' -fuzz FuzzSet -fuzztime $(FUZZTIME)
	go test ./internal/forge -run '^$$' -fuzz FuzzParseRepoURL -fuzztime $(FUZZTIME)
	go test ./internal/forge -run '^$$' -fuzz FuzzChangeRequestAnswers -fuzztime $(FUZZTIME)
	go test ./internal/codify -run '^$$' -fuzz FuzzEdit -fuzztime $(FUZZTIME)
	go test ./internal/audit -run '^$$' -fuzz FuzzScanFile -fuzztime $(FUZZTIME)
	go test ./internal/audit -run '^$$' -fuzz FuzzIncludeLocals -fuzztime $(FUZZTIME)
	go test ./internal/gitsource -run '^$$' -fuzz FuzzWriteTree -fuzztime $(FUZZTIME)
	go test ./internal/gitsource -run '^$$' -fuzz FuzzPatchTree -fuzztime $(FUZZTIME)
	go test ./internal/gitsource -run '^$$' -fuzz FuzzCheckPackComplete -fuzztime $(FUZZTIME)
	go test ./internal/render -run '^$$' -fuzz FuzzKustomizationRemoteRefs -fuzztime $(FUZZTIME)
	go test ./internal/render -run '^$$' -fuzz FuzzSchemaRemoteRefs -fuzztime $(FUZZTIME)
	go test ./internal/ociartifact -run '^$$' -fuzz FuzzUnpack -fuzztime $(FUZZTIME)
	go test ./internal/ociartifact -run '^$$' -fuzz FuzzParseRevision -fuzztime $(FUZZTIME)
	go test ./internal/publish -run '^$$' -fuzz FuzzParseRef -fuzztime $(FUZZTIME)
	go test ./internal/artifactsign -run '^$$' -fuzz FuzzParseGitsign -fuzztime $(FUZZTIME)
	go test ./internal/render -run '^$$' -fuzz FuzzWithGenerateNamesAsNames -fuzztime $(FUZZTIME)
	go test ./internal/render -run '^$$' -fuzz FuzzJsonnetImport -fuzztime $(FUZZTIME)
	go test ./internal/preview -run '^$$' -fuzz FuzzDecodeApplications -fuzztime $(FUZZTIME)
	go test ./internal/lifecycle -run '^$$' -fuzz FuzzLifecycleOf -fuzztime $(FUZZTIME)
	go test ./internal/webhook -run '^$$' -fuzz FuzzWebhookPayloads -fuzztime $(FUZZTIME)
	go test ./internal/confine -run '^$$' -fuzz FuzzLexical -fuzztime $(FUZZTIME)
	go test ./internal/sopsfile -run '^$$' -fuzz FuzzIsEncrypted -fuzztime $(FUZZTIME)
	go test ./internal/egress -run '^$$' -fuzz FuzzCheckAddress -fuzztime $(FUZZTIME)
	go test ./internal/helmrepo -run '^$$' -fuzz FuzzParseDependencies -fuzztime $(FUZZTIME)
	go test ./internal/helmrepo -run '^$$' -fuzz FuzzLookupTable -fuzztime $(FUZZTIME)
	go test ./internal/approval -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME)
	go test ./internal/celhealth -run '^$$' -fuzz FuzzCompile -fuzztime $(FUZZTIME)
	go test ./internal/argocd -run '^$$' -fuzz FuzzRecognise -fuzztime $(FUZZTIME)
	go test ./internal/ledger -run '^$$' -fuzz FuzzVerify -fuzztime $(FUZZTIME)
	go test ./internal/evidence -run '^$$' -fuzz FuzzReadAuditLog -fuzztime $(FUZZTIME)
	go test ./internal/readset -run '^$$' -fuzz FuzzValues -fuzztime $(FUZZTIME)

BENCH_APPS ?= 100
BENCH_IDLE ?= 5m
BENCH_SHARDS ?= 1
BENCH_INTERVAL ?= 1m
BENCH_KCM_QPS ?= 0
BENCH_IDLE_BASELINE ?= 1
BENCH_CONCURRENCY ?= 8
bench-controller: k8s-bins ## Controller latency, scale (BENCH_APPS, BENCH_SHARDS), RSS, idle cost (BENCH_INTERVAL); figures for docs/benchmarks.md
	KUBEBUILDER_ASSETS=$(K8S_BIN) BENCH_APPS=$(BENCH_APPS) BENCH_IDLE=$(BENCH_IDLE) BENCH_SHARDS=$(BENCH_SHARDS) \
		BENCH_INTERVAL=$(BENCH_INTERVAL) BENCH_KCM_QPS=$(BENCH_KCM_QPS) BENCH_IDLE_BASELINE=$(BENCH_IDLE_BASELINE) BENCH_CONCURRENCY=$(BENCH_CONCURRENCY) \
		go test -tags bench -run TestBenchController -count=1 -timeout 120m -v ./test/bench/

bench-forge: k8s-bins gitea ## Push → commit status success visible at a real Gitea, with Gitea's own webhook delivery as the floor
	KUBEBUILDER_ASSETS=$(K8S_BIN) KEYLESS_GITEA=$(GITEA) go test -tags bench -run TestBenchForge -count=1 -timeout 20m -v ./test/bench/

bench-bump: ## One bump and 20 concurrent bumps against the local Git server
	go test -tags bench -run TestBenchBump -count=1 -timeout 10m -v ./test/bench/

BENCH_RENDER_RUNS ?= 15
bench-render: build $(HELM) $(KUSTOMIZE) ## keyless render vs helm template and kustomize build on the reference charts and kustomizations (BENCH_RENDER_RUNS each)
	BENCH_RENDER_RUNS=$(BENCH_RENDER_RUNS) KEYLESS_BIN=$(KEYLESS) KEYLESS_HELM=$(HELM) KEYLESS_KUSTOMIZE=$(KUSTOMIZE) \
		go test -tags bench -run TestBenchRender -count=1 -timeout 60m -v ./test/bench/

ui-screenshots: k8s-bins ## Regenerate docs/images/ui-*.png: the browser test drives keyless ui in headless Chromium and writes them
	mkdir -p $(CURDIR)/docs/images
	KUBEBUILDER_ASSETS=$(K8S_BIN) KEYLESS_UI_SCREENSHOTS=$(CURDIR)/docs/images \
		go test -run '^TestBrowserDashboard$$' -count=1 -v ./internal/ui/

hack-mods: ## Regenerate hack/*/go.mod after changing internal/version/versions.env
	hack/gen-hack-mods.sh

clean: ## Remove bin/ (including the control plane binaries)
	rm -rf bin
