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
  # Containers outlive containerd (their shims keep running): stop them once the kubelet,
  # which would restart them, is gone.
  sock="$CLUSTER_DIR/node/containerd/containerd.sock"
  if [[ $name == kubelet && -S "$sock" ]]; then
    tasks=$(ctr -a "$sock" -n k8s.io tasks ls -q 2>/dev/null)
    for t in $tasks; do ctr -a "$sock" -n k8s.io tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
    sleep 1
    for t in $tasks; do ctr -a "$sock" -n k8s.io tasks delete "$t" >/dev/null 2>&1; done
    [[ -n $tasks ]] && echo "stopped $(wc -w <<<"$tasks") containers"
  fi
  # kube-proxy's rules outlive it: remove them like upstream's --cleanup.
  if [[ $name == kube-proxy && -f "$CLUSTER_DIR/bin-dir" ]]; then
    "$(cat "$CLUSTER_DIR/bin-dir")/kube-proxy" --cleanup >/dev/null 2>&1 && echo "removed kube-proxy rules"
  fi
done
# Pod sandboxes' mounts (shm, network namespaces) outlive containerd: release them, so the
# pods' network namespaces go away and `make clean-cluster` can delete the state.
awk -v d="$CLUSTER_DIR/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r |
  while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
