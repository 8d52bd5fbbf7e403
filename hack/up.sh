#!/usr/bin/env bash
# Starts a local ferrokube cluster in the background: a 3-member etcd on loopback and
# kube-apiserver with TLS, client certificates and Node,RBAC authorization (certificates and
# kubeconfigs from hack/gen-pki.sh). Each later daemon joins here as it lands.
# Environment: CLUSTER_DIR (state), BIN_DIR (built binaries), APISERVER_PORT (default 6443).
set -euo pipefail

CLUSTER_DIR=${CLUSTER_DIR:-$PWD/.cluster}
BIN_DIR=${BIN_DIR:?BIN_DIR must name the directory of the built binaries}
APISERVER_PORT=${APISERVER_PORT:-6443}
ETCD_BASE_PORT=${ETCD_BASE_PORT:-12379}
mkdir -p "$CLUSTER_DIR"/{pids,logs,etcd,pki}

running() { [[ -f "$CLUSTER_DIR/pids/$1" ]] && kill -0 "$(cat "$CLUSTER_DIR/pids/$1")" 2>/dev/null; }

start() { # start NAME command...
  local name=$1; shift
  if running "$name"; then echo "  $name already running (pid $(cat "$CLUSTER_DIR/pids/$name"))"; return; fi
  nohup "$@" >"$CLUSTER_DIR/logs/$name.log" 2>&1 &
  echo $! >"$CLUSTER_DIR/pids/$name"
  echo "  started $name (pid $!, log $CLUSTER_DIR/logs/$name.log)"
}

wait_for() { # wait_for WHAT SECONDS command...
  local what=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "error: $what did not become ready in ${secs}s; see $CLUSTER_DIR/logs" >&2
  exit 1
}

echo "etcd (3 members):"
cluster="" endpoints=""
for i in 0 1 2; do
  c=$((ETCD_BASE_PORT + 2 * i)) p=$((ETCD_BASE_PORT + 2 * i + 1))
  cluster+="${cluster:+,}etcd$i=http://127.0.0.1:$p"
  endpoints+="${endpoints:+,}http://127.0.0.1:$c"
done
for i in 0 1 2; do
  c=$((ETCD_BASE_PORT + 2 * i)) p=$((ETCD_BASE_PORT + 2 * i + 1))
  start "etcd$i" etcd --name "etcd$i" --data-dir "$CLUSTER_DIR/etcd/etcd$i" \
    --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
    --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" \
    --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token ferrokube-local
done
wait_for etcd 30 env ETCDCTL_API=3 etcdctl --endpoints "$endpoints" endpoint health

NODE_NAME=${NODE_NAME:-$(hostname | tr '[:upper:]' '[:lower:]')}
PKI="$CLUSTER_DIR/pki"
SERVER="https://127.0.0.1:$APISERVER_PORT" hack/gen-pki.sh "$PKI" "$NODE_NAME" >/dev/null

echo "control plane:"
start kube-apiserver "$BIN_DIR/kube-apiserver" \
  --etcd-servers="$endpoints" --secure-port="$APISERVER_PORT" --bind-address=127.0.0.1 \
  --service-cluster-ip-range=10.96.0.0/12 \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" --authorization-mode=Node,RBAC \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
  --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --audit-log-path="$CLUSTER_DIR/logs/audit.log" --audit-policy-file="$PKI/audit-policy.yaml"
wait_for kube-apiserver 60 curl -sf --cacert "$PKI/ca.crt" "https://127.0.0.1:$APISERVER_PORT/readyz"

KUBECONFIG_FILE="$PKI/admin.kubeconfig"
echo "$BIN_DIR" >"$CLUSTER_DIR/bin-dir"

start kube-scheduler "$BIN_DIR/kube-scheduler" --kubeconfig="$PKI/scheduler.kubeconfig" \
  --leader-elect=true --bind-address=127.0.0.1 --secure-port=10259
start kube-controller-manager "$BIN_DIR/kube-controller-manager" \
  --kubeconfig="$PKI/controller-manager.kubeconfig" --leader-elect=true \
  --use-service-account-credentials=true \
  --bind-address=127.0.0.1 --secure-port=10257 --root-ca-file="$PKI/ca.crt" \
  --cert-dir="$PKI/kube-controller-manager" \
  --allocate-node-cidrs --cluster-cidr=10.244.0.0/16 --node-cidr-mask-size=24

echo "node:"
if [[ $(id -u) == 0 ]]; then
  CLUSTER_DIR="$CLUSTER_DIR" BIN_DIR="$BIN_DIR" NODE_NAME="$NODE_NAME" \
    KUBECONFIG="$PKI/kubelet-$NODE_NAME.kubeconfig" hack/start-node.sh | sed 1d
  start kube-proxy "$BIN_DIR/kube-proxy" --kubeconfig="$PKI/kube-proxy.kubeconfig" \
    --hostname-override="$NODE_NAME" --cluster-cidr=10.244.0.0/16 \
    --healthz-bind-address=127.0.0.1:10256 --metrics-bind-address=127.0.0.1:10249
else
  echo "  containerd, the kubelet and kube-proxy need root (cgroups, network namespaces, packet filter); not started"
fi

cat <<MSG

ferrokube is up. Use it with:

  export KUBECONFIG=$KUBECONFIG_FILE
  kubectl get namespaces

Logs: $CLUSTER_DIR/logs    Stop: make down
MSG
