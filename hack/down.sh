#!/usr/bin/env bash
# Stops every process `make up` started, by the PIDs it recorded (never by name).
set -uo pipefail
CLUSTER_DIR=${CLUSTER_DIR:-$PWD/.cluster}
[[ -d "$CLUSTER_DIR/pids" ]] || { echo "no cluster in $CLUSTER_DIR"; exit 0; }
# Stop in reverse start order: node agents, control plane, then etcd.
for name in kube-proxy kubelet containerd kube-controller-manager kube-scheduler kube-apiserver etcd2 etcd1 etcd0; do
  f="$CLUSTER_DIR/pids/$name"
  [[ -f "$f" ]] || continue
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "stopped $name (pid $pid)"
  fi
  rm -f "$f"
done
