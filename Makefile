# ferrokube: the Kubernetes control plane and node agents in Rust.
# `make up` starts a local cluster, `make test` runs every suite.

SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TARGET_DIR ?= $(HOME)/ferrokube-target
PROFILE ?= release
CLUSTER_DIR ?= $(CURDIR)/.cluster

.PHONY: all build deps up down test unit integration lint fmt bench bench-apiserver bench-scheduler bench-controller-manager bench-kubelet bench-kube-proxy clean-cluster

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

## clean-cluster: stop the cluster and delete its data, certificates and pod-network bridge.
clean-cluster: down
	rm -rf $(CLUSTER_DIR)
	@if ip link show ferrokube0 >/dev/null 2>&1; then ip link del ferrokube0; fi

## test: unit tests and the end-to-end suites against real etcd, apiserver and kubectl.
test: deps
	$(CARGO) build --workspace --bins
	@set -o pipefail; mkdir -p $(CARGO_TARGET_DIR); \
	$(CARGO) test --workspace --no-fail-fast 2>&1 | tee $(CARGO_TARGET_DIR)/test-output.log; status=$$?; \
	awk '/^test result:/ { p += $$4; f += $$6 } END { printf "%d passed, %d failed\n", p, f }' \
	  $(CARGO_TARGET_DIR)/test-output.log; exit $$status

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
bench: bench-apiserver bench-scheduler bench-controller-manager bench-kubelet bench-kube-proxy

bench-apiserver: deps
	$(CARGO) build --release -p kube-apiserver -p ferrokube-bench
	FERROKUBE_BIN_DIR=$(CARGO_TARGET_DIR)/release $(CARGO_TARGET_DIR)/release/ferrokube-bench apiserver $(BENCH_ARGS)

## bench-scheduler: pods/s and per-pod latency with 5 000 nodes (basic, then RSS at 100 nodes,
## then topology spread and anti-affinity); sizes via SCHED_BENCH_NODES, SCHED_BENCH_PENDING,
## SCHED_BENCH_RUNS (basic,small,spread).
bench-scheduler: deps
	$(CARGO) build --release -p kube-apiserver -p kube-scheduler
	FERROKUBE_BIN_DIR=$(CARGO_TARGET_DIR)/release $(CARGO) test --release -p integration-tests --test scheduler -- --ignored --nocapture bench_scheduler

## bench-controller-manager: seconds from 100 Deployments x 10 replicas to all 1 000 pods.
bench-controller-manager: deps
	$(CARGO) build --release -p kube-apiserver -p kube-controller-manager -p ferrokube-bench
	FERROKUBE_BIN_DIR=$(CARGO_TARGET_DIR)/release $(CARGO_TARGET_DIR)/release/ferrokube-bench controller-manager

## bench-kubelet: pod start-up latency p50/p99 (create to Ready, seen by a watch) for 100 pods
## on one node with a local image; needs root (containerd, CNI).
bench-kubelet: deps
	$(CARGO) build --release -p kube-apiserver -p kubelet
	$(CARGO) test --release -p integration-tests --test kubelet -- --ignored --nocapture bench_pod_startup_latency

## bench-kube-proxy: full and one-service sync times with 10 000 services / 50 000 endpoints
## (runs in its own network namespace; needs root).
bench-kube-proxy: deps
	$(CARGO) bench -p kube-proxy --bench sync
