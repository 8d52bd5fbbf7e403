# ferrokube: the Kubernetes control plane and node agents in Rust.
# `make up` starts a local cluster, `make test` runs every suite.

CARGO ?= cargo
export CARGO_TARGET_DIR ?= $(HOME)/ferrokube-target
PROFILE ?= release
CLUSTER_DIR ?= $(CURDIR)/.cluster

.PHONY: all build deps up down test unit integration lint fmt bench bench-apiserver clean-cluster

all: build

deps:
	@hack/install-deps.sh

build: deps
	$(CARGO) build --workspace --bins --profile $(PROFILE)

## up: install prerequisites, build, start etcd (3 members) and the control plane, print KUBECONFIG.
up: build
	@CLUSTER_DIR=$(CLUSTER_DIR) BIN_DIR=$(CARGO_TARGET_DIR)/$(PROFILE) hack/up.sh

## down: stop every process `make up` started (data stays in .cluster for the next `make up`).
down:
	@CLUSTER_DIR=$(CLUSTER_DIR) hack/down.sh

## clean-cluster: stop the cluster and delete its data and certificates.
clean-cluster: down
	rm -rf $(CLUSTER_DIR)

## test: unit tests and the end-to-end suites against real etcd, apiserver and kubectl.
test: deps
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --no-fail-fast

unit:
	$(CARGO) test --workspace --lib --bins

integration:
	$(CARGO) build --workspace --bins
	$(CARGO) test -p integration-tests

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## bench: throughput and latency figures (not pass/fail). BENCH_ARGS may point it at any apiserver.
bench: bench-apiserver

bench-apiserver: deps
	$(CARGO) build --release -p kube-apiserver -p ferrokube-bench
	FERROKUBE_BIN_DIR=$(CARGO_TARGET_DIR)/release $(CARGO_TARGET_DIR)/release/ferrokube-bench apiserver $(BENCH_ARGS)
