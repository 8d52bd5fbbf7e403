#!/bin/sh
# Builds the offline OCI image archives the kubelet tests and `make up` import into containerd
# (`ctr -n k8s.io images import <tar>`), from the distribution's static busybox and no registry:
#
#   busybox.tar  busybox:1 / docker.io/library/busybox:1 — one symlink per applet, Cmd ["sh"]
#   pause.tar    registry.k8s.io/pause:3.10 — the sandbox's init that waits for a signal
#
# Usage: images/build.sh OUTDIR. The archives are reproducible (fixed mtimes and owners).
set -eu

out=${1:?usage: build.sh OUTDIR}
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || { echo "need the static busybox (Debian package busybox-static)" >&2; exit 1; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { wc -c <"$1" | tr -d ' '; }

# layer ROOTFS LAYOUT: adds ROOTFS as a gzip layer blob; sets $diff_id, $layer_digest, $layer_size.
layer() {
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$1" -cf "$work/layer.tar" .
    diff_id=$(sha "$work/layer.tar")
    gzip -n -9 <"$work/layer.tar" >"$work/layer.tar.gz"
    layer_digest=$(sha "$work/layer.tar.gz")
    layer_size=$(size "$work/layer.tar.gz")
    mv "$work/layer.tar.gz" "$2/blobs/sha256/$layer_digest"
    rm "$work/layer.tar"
}

# blob LAYOUT FILE: moves FILE into the layout; sets $blob_digest and $blob_size.
blob() {
    blob_digest=$(sha "$2")
    blob_size=$(size "$2")
    mv "$2" "$1/blobs/sha256/$blob_digest"
}

# image NAME ROOTFS CONFIG_JSON_FRAGMENT TAR NAMES...: writes an OCI layout archive.
image() {
    name=$1 rootfs=$2 cfg=$3 tarball=$4
    shift 4
    layout="$work/layout-$name"
    mkdir -p "$layout/blobs/sha256"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
    layer "$rootfs" "$layout"
    printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"ferrokube images/build.sh"}]}' \
        "$cfg" "$diff_id" >"$work/config.json"
    blob "$layout" "$work/config.json"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
        "$blob_digest" "$blob_size" "$layer_digest" "$layer_size" >"$work/manifest.json"
    blob "$layout" "$work/manifest.json"
    entries=""
    for ref in "$@"; do
        tag=${ref##*:}
        entry=$(printf '{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}' \
            "$blob_digest" "$blob_size" "$ref" "$tag")
        entries="${entries:+$entries,}$entry"
    done
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s]}' "$entries" >"$layout/index.json"
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$layout" -cf "$out/$tarball" .
}

# busybox: the userland of the official image (applets as symlinks in /bin, root user, /tmp).
root="$work/busybox"
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/var" "$root/home" "$root/dev" "$root/proc" "$root/sys"
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$root/etc/group"
image busybox "$root" '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]}' \
    busybox.tar docker.io/library/busybox:1 docker.io/library/busybox:latest

# pause: PID 1 of every sandbox; sleeps until SIGTERM/SIGINT and exits 0 on them.
root="$work/pause"
mkdir -p "$root/bin"
cp "$busybox" "$root/bin/busybox"
ln -sf busybox "$root/bin/sh"
ln -sf busybox "$root/bin/sleep"
image pause "$root" '{"Env":["PATH=/bin"],"Entrypoint":["/bin/sh","-c","trap \"exit 0\" TERM INT; while :; do sleep 3600 & wait; done"]}' \
    pause.tar registry.k8s.io/pause:3.10

echo "wrote $out/busybox.tar and $out/pause.tar"
