#!/bin/sh
# Generates the PKI of a local ferrokube cluster, as kubeadm lays it out: a cluster CA, the
# kube-apiserver serving certificate with the SANs clients use, one client certificate and
# kubeconfig per identity (admin in system:masters, controller-manager, scheduler,
# kube-proxy, one kubelet per node in system:nodes), the service-account signing key pair
# and a Metadata-level audit policy. Existing files are kept, so re-running is harmless.
#
# usage: hack/gen-pki.sh DIR [NODE...]
#   SERVER         URL written into the kubeconfigs (default https://127.0.0.1:6443)
#   APISERVER_IPS  IP SANs, space separated (default: 127.0.0.1 and the first service IP
#                  of both 10.0.0.0/24 and 10.96.0.0/12)
#   APISERVER_DNS  extra DNS SANs, space separated (default: localhost and the host name)
set -eu

dir=${1:?usage: $0 DIR [NODE...]}
shift
nodes=${*:-$(hostname)}
server=${SERVER:-https://127.0.0.1:6443}
ips=${APISERVER_IPS:-127.0.0.1 10.0.0.1 10.96.0.1}
dns=${APISERVER_DNS:-localhost $(hostname)}
days=3650

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
umask 077

if [ ! -f "$dir/ca.key" ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$dir/ca.key" -subj "/CN=ferrokube-ca" -days "$days" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
        -out "$dir/ca.crt"
fi

# cert NAME SUBJECT EXTENDED_KEY_USAGE [SAN]
cert() {
    [ -f "$dir/$1.crt" ] && return 0
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/$1.key" 2>/dev/null
    ext="$dir/$1.ext"
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$3"
        [ -n "${4:-}" ] && echo "subjectAltName=$4"
    } >"$ext"
    openssl req -new -key "$dir/$1.key" -subj "$2" -out "$dir/$1.csr"
    openssl x509 -req -in "$dir/$1.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -CAcreateserial -days "$days" -extfile "$ext" -out "$dir/$1.crt" 2>/dev/null
    rm -f "$dir/$1.csr" "$ext"
}

# kubeconfig NAME CERT
kubeconfig() {
    cat >"$dir/$1.kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: ferrokube
  cluster:
    server: $server
    certificate-authority: $dir/ca.crt
users:
- name: $1
  user:
    client-certificate: $dir/$2.crt
    client-key: $dir/$2.key
contexts:
- name: $1@ferrokube
  context: {cluster: ferrokube, user: $1}
current-context: $1@ferrokube
KUBECONFIG
}

san="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
for d in $dns; do san="$san,DNS:$d"; done
for ip in $ips; do san="$san,IP:$ip"; done
cert apiserver "/CN=kube-apiserver" serverAuth "$san"

cert admin "/O=system:masters/CN=kubernetes-admin" clientAuth
kubeconfig admin admin
# The apiserver's identity towards kubelets (pods/log, exec, attach, portforward), as kubeadm's.
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
cert controller-manager "/CN=system:kube-controller-manager" clientAuth
kubeconfig controller-manager controller-manager
cert scheduler "/CN=system:kube-scheduler" clientAuth
kubeconfig scheduler scheduler
cert kube-proxy "/CN=system:kube-proxy" clientAuth
kubeconfig kube-proxy kube-proxy
for node in $nodes; do
    cert "kubelet-$node" "/O=system:nodes/CN=system:node:$node" clientAuth
    kubeconfig "kubelet-$node" "kubelet-$node"
done

if [ ! -f "$dir/sa.key" ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/sa.key" 2>/dev/null
    openssl pkey -in "$dir/sa.key" -pubout -out "$dir/sa.pub"
fi

[ -f "$dir/audit-policy.yaml" ] || cat >"$dir/audit-policy.yaml" <<POLICY
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  nonResourceURLs: ["/healthz*", "/livez*", "/readyz*"]
- level: Metadata
POLICY

echo "PKI in $dir"
