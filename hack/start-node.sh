#!/usr/bin/env bash
# Starts one ferrokube node next to a running control plane: containerd with its own root, state,
# socket and CNI bridge (the settings this machine needs), the offline-built busybox and pause
# images imported (no registry), and a kubelet registering the node. `hack/down.sh` stops it by
# the PIDs recorded in $CLUSTER_DIR/pids (containerd, kubelet).
#
# Environment: CLUSTER_DIR (state), BIN_DIR (built binaries), KUBECONFIG (admin kubeconfig),
# NODE_NAME (default: host name), POD_SUBNET (default 10.244.0.0/24), BRIDGE (ferrokube0),
# SERVICE_CIDR (10.96.0.0/12, routed to the bridge so ClusterIP traffic stays on the machine),
# CLUSTER_DNS (10.96.0.10), KUBELET_PORT (10250), CLIENT_CA_FILE (the CA of the apiserver's
# kubelet client certificate, default $CLUSTER_DIR/pki/ca.crt).
set -euo pipefail

CLUSTER_DIR=${CLUSTER_DIR:-$PWD/.cluster}
BIN_DIR=${BIN_DIR:?BIN_DIR must name the directory of the built binaries}
KUBECONFIG=${KUBECONFIG:-$CLUSTER_DIR/admin.kubeconfig}
NODE_NAME=${NODE_NAME:-$(hostname | tr '[:upper:]' '[:lower:]')}
POD_SUBNET=${POD_SUBNET:-10.244.0.0/24}
BRIDGE=${BRIDGE:-ferrokube0}
SERVICE_CIDR=${SERVICE_CIDR:-10.96.0.0/12}
CLUSTER_DNS=${CLUSTER_DNS:-10.96.0.10}
KUBELET_PORT=${KUBELET_PORT:-10250}
CLIENT_CA_FILE=${CLIENT_CA_FILE:-$CLUSTER_DIR/pki/ca.crt}
HERE=$(cd "$(dirname "$0")" && pwd)
NODE_DIR="$CLUSTER_DIR/node"
SOCK="$NODE_DIR/containerd/containerd.sock"
mkdir -p "$CLUSTER_DIR"/{pids,logs} "$NODE_DIR"/{containerd,cni,manifests,kubelet,images}

running() { [[ -f "$CLUSTER_DIR/pids/$1" ]] && kill -0 "$(cat "$CLUSTER_DIR/pids/$1")" 2>/dev/null; }
start() { # start NAME command...
  local name=$1; shift
  if running "$name"; then echo "  $name already running (pid $(cat "$CLUSTER_DIR/pids/$name"))"; return; fi
  nohup "$@" >"$CLUSTER_DIR/logs/$name.log" 2>&1 &
  echo $! >"$CLUSTER_DIR/pids/$name"
  echo "  started $name (pid $!, log $CLUSTER_DIR/logs/$name.log)"
}

# The pod network's bridge holds the node's address, so it exists before the kubelet starts.
gateway=$(echo "$POD_SUBNET" | awk -F'[./]' '{print $1"."$2"."$3"."$4+1}')
prefix=${POD_SUBNET#*/}
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link add "$BRIDGE" type bridge
fi
ip addr replace "$gateway/$prefix" dev "$BRIDGE"
ip link set "$BRIDGE" up
ip route replace "$SERVICE_CIDR" dev "$BRIDGE"

cat >"$NODE_DIR/cni/10-ferrokube.conflist" <<JSON
{"cniVersion": "0.4.0", "name": "ferrokube", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "isDefaultGateway": true, "ipMasq": true,
   "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$gateway"}]],
            "dataDir": "$NODE_DIR/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}},
  {"type": "loopback"}
]}
JSON

# containerd: restrict_oom_score_adj (root lacks CAP_SYS_RESOURCE here), netns under the state
# dir (else pod network teardown fails), cgroupfs, and a streaming server on loopback.
cat >"$NODE_DIR/containerd.toml" <<TOML
version = 2
root = "$NODE_DIR/containerd/root"
state = "$NODE_DIR/containerd/state"
[grpc]
  address = "$SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni"
TOML

echo "node $NODE_NAME:"
start containerd containerd --config "$NODE_DIR/containerd.toml"
for _ in $(seq 1 100); do [[ -S "$SOCK" ]] && break; sleep 0.1; done
[[ -S "$SOCK" ]] || { echo "error: containerd did not start; see $CLUSTER_DIR/logs/containerd.log" >&2; exit 1; }

[[ -f "$NODE_DIR/images/pause.tar" ]] || "$HERE/../images/build.sh" "$NODE_DIR/images" >/dev/null
for image in pause busybox; do
  ctr -a "$SOCK" -n k8s.io images import "$NODE_DIR/images/$image.tar" >/dev/null
done
echo "  imported registry.k8s.io/pause:3.10, docker.io/library/busybox:1 (and :latest)"

cat >"$NODE_DIR/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
port: $KUBELET_PORT
staticPodPath: $NODE_DIR/manifests
podLogsDir: $CLUSTER_DIR/logs/pods
clusterDNS: [$CLUSTER_DNS]
clusterDomain: cluster.local
authentication:
  x509:
    clientCAFile: $CLIENT_CA_FILE
  webhook:
    enabled: true
  anonymous:
    enabled: false
authorization:
  mode: Webhook
YAML
start kubelet "$BIN_DIR/kubelet" --config "$NODE_DIR/kubelet.yaml" --kubeconfig "$KUBECONFIG" \
  --container-runtime-endpoint "unix://$SOCK" --hostname-override "$NODE_NAME" \
  --node-ip "$gateway" --root-dir "$NODE_DIR/kubelet"
