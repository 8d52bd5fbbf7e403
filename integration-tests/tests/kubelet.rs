//! The kubelet against the real apiserver, etcd and containerd: each test starts its own
//! containerd (own root, state, socket and CNI bridge on its own subnet), imports the
//! offline-built busybox and pause images, and runs the built kubelet binary.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        atomic::{AtomicU32, Ordering},
        OnceLock,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use integration_tests::{bin_dir, binary, free_port, ApiServer, Etcd, Process};
use k8s_openapi::api::{
    coordination::v1::Lease,
    core::v1::{ConfigMap, Node, Pod},
};
use kube::{
    api::{DeleteParams, Patch, PatchParams, PostParams},
    Api,
};
use serde_json::json;

/// The offline image archives, built once per test run by images/build.sh.
fn images() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = bin_dir().join("ferrokube-test-images");
        if !dir.join("pause.tar").exists() {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/build.sh");
            let staged = bin_dir().join(format!("ferrokube-test-images.{}", std::process::id()));
            let status = Command::new("sh")
                .arg(&script)
                .arg(&staged)
                .status()
                .expect("running images/build.sh");
            assert!(status.success(), "images/build.sh failed");
            let _ = std::fs::rename(&staged, &dir);
            let _ = std::fs::remove_dir_all(&staged);
        }
        dir
    })
}

/// The node API's client CA and the apiserver's kubelet client certificate signed by it
/// (`kube-apiserver-kubelet-client` in `system:masters`, as kubeadm issues it), made once per
/// test run.
fn kubelet_pki() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        use rcgen::{
            BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
        };
        let dir = bin_dir().join("ferrokube-test-kubelet-pki");
        if dir.join("kubelet-client.key").exists() {
            return dir;
        }
        let staged = bin_dir().join(format!("ferrokube-test-kubelet-pki.{}", std::process::id()));
        std::fs::create_dir_all(&staged).expect("creating the test PKI directory");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "ferrokube-test-kubelet-client-ca");
        ca.distinguished_name = dn;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().expect("client key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client parameters");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "kube-apiserver-kubelet-client");
        dn.push(DnType::OrganizationName, "system:masters");
        params.distinguished_name = dn;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &issuer).expect("client certificate");
        std::fs::write(staged.join("ca.crt"), ca_cert.pem()).expect("writing ca.crt");
        std::fs::write(staged.join("kubelet-client.crt"), cert.pem())
            .expect("writing the client certificate");
        std::fs::write(staged.join("kubelet-client.key"), key.serialize_pem())
            .expect("writing the client key");
        // Another test process may have won the race; either set works.
        let _ = std::fs::rename(&staged, &dir);
        let _ = std::fs::remove_dir_all(&staged);
        dir
    })
}

/// The apiserver flags that make it present its kubelet client certificate.
fn kubelet_client_flags() -> Vec<String> {
    let pki = kubelet_pki();
    vec![
        format!(
            "--kubelet-client-certificate={}",
            pki.join("kubelet-client.crt").display()
        ),
        format!(
            "--kubelet-client-key={}",
            pki.join("kubelet-client.key").display()
        ),
    ]
}

fn wait_for_file(path: &Path, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    while !path.exists() {
        if start.elapsed() > timeout {
            bail!("{} did not appear", path.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// A node: containerd with its own CNI network, and (when started) a kubelet.
struct TestNode {
    dir: tempfile::TempDir,
    containerd: Option<Process>,
    kubelet: Option<Process>,
    socket: PathBuf,
    bridge: String,
    name: String,
    port: u16,
}

impl TestNode {
    fn start() -> Result<TestNode> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let bridge = format!("fk{}x{n}", pid % 100_000);
        let subnet = format!("10.{}.{}.0/24", 200 + pid % 50, n % 250);
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        std::fs::create_dir_all(d.join("cni"))?;
        std::fs::create_dir_all(d.join("manifests"))?;
        let socket = d.join("containerd.sock");
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
[grpc]
  address = "{sock}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
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
    conf_dir = "{cni}"
"#,
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = socket.display(),
            opt = d.join("opt").display(),
            cni = d.join("cni").display(),
        );
        std::fs::write(d.join("containerd.toml"), config)?;
        let cni = json!({
            "cniVersion": "0.4.0",
            "name": format!("net-{bridge}"),
            "plugins": [
                {"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false, "hairpinMode": true,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]], "dataDir": d.join("ipam").display().to_string()}},
                {"type": "portmap", "capabilities": {"portMappings": true}},
                {"type": "loopback"}
            ]
        });
        std::fs::write(d.join("cni/10-bridge.conflist"), cni.to_string())?;
        let mut cmd = Command::new("containerd");
        cmd.arg("--config").arg(d.join("containerd.toml"));
        let containerd = Process::spawn(cmd, d.join("containerd.log"))?;
        wait_for_file(&socket, Duration::from_secs(20)).with_context(|| containerd.log_text())?;
        for image in ["pause.tar", "busybox.tar"] {
            let out = Command::new("ctr")
                .arg("-a")
                .arg(&socket)
                .args(["-n", "k8s.io", "images", "import"])
                .arg(images().join(image))
                .output()?;
            if !out.status.success() {
                bail!(
                    "importing {image}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        Ok(TestNode {
            name: format!("node-{}-{n}", pid % 100_000),
            dir,
            containerd: Some(containerd),
            kubelet: None,
            socket,
            bridge,
            port: free_port(),
        })
    }

    fn manifests(&self) -> PathBuf {
        self.dir.path().join("manifests")
    }

    fn logs(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    fn start_kubelet(&mut self, kubeconfig: Option<&Path>) -> Result<()> {
        self.start_kubelet_with(kubeconfig, "")
    }

    /// Starts the kubelet with `extra` appended to its KubeletConfiguration file. The node API
    /// authenticates client certificates of the test PKI and, with an apiserver, tokens and
    /// authorization through it (upstream's defaults); standalone, it allows any client.
    fn start_kubelet_with(&mut self, kubeconfig: Option<&Path>, extra: &str) -> Result<()> {
        let d = self.dir.path();
        let standalone = if kubeconfig.is_none() {
            "    webhook: {enabled: false}\nauthorization: {mode: AlwaysAllow}\n"
        } else {
            ""
        };
        // The build machine's free disk space says nothing about the code under test; tests that
        // are about eviction set their own thresholds.
        let eviction = if extra.contains("evictionHard:") {
            ""
        } else {
            "evictionHard: {memory.available: 100Mi, nodefs.available: 1%}\n"
        };
        let config = format!(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n{eviction}port: {}\npodLogsDir: {}\nstaticPodPath: {}\nfileCheckFrequency: 1s\nclusterDNS: [10.96.0.10]\nclusterDomain: cluster.local\nnodeStatusUpdateFrequency: 2s\nauthentication:\n    x509: {{clientCAFile: {}}}\n{standalone}{extra}",
            self.port,
            self.logs().display(),
            self.manifests().display(),
            kubelet_pki().join("ca.crt").display(),
        );
        std::fs::write(d.join("kubelet.yaml"), config)?;
        let mut cmd = Command::new(binary("kubelet"));
        cmd.arg("--config")
            .arg(d.join("kubelet.yaml"))
            .arg(format!(
                "--container-runtime-endpoint=unix://{}",
                self.socket.display()
            ))
            .arg(format!("--hostname-override={}", self.name))
            .arg("--root-dir")
            .arg(d.join("kubelet"))
            .arg("--v=2");
        if let Some(k) = kubeconfig {
            cmd.arg("--kubeconfig").arg(k);
        }
        let log = d.join(format!(
            "kubelet-{}.log",
            Instant::now().elapsed().as_nanos() + self.port as u128
        ));
        self.kubelet = Some(Process::spawn(cmd, log)?);
        Ok(())
    }

    fn stop_kubelet(&mut self) {
        if let Some(mut k) = self.kubelet.take() {
            k.terminate();
        }
    }

    fn kubelet_log(&self) -> String {
        std::fs::read_dir(self.dir.path())
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("kubelet-"))
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("\n---\n")
            })
            .unwrap_or_default()
    }

    fn runtime(&self) -> kubelet::cri::Runtime {
        kubelet::cri::Runtime::connect(&format!("unix://{}", self.socket.display()))
            .expect("CRI client")
    }

    /// Running containers of the pod with `uid`.
    async fn running_containers(&self, uid: &str) -> Result<Vec<String>> {
        let labels = HashMap::from([("io.kubernetes.pod.uid".to_string(), uid.to_string())]);
        Ok(self
            .runtime()
            .list_containers(labels)
            .await?
            .into_iter()
            .filter(|c| c.state == RUNNING)
            .map(|c| c.id)
            .collect())
    }
}

/// CRI `ContainerState::CONTAINER_RUNNING`.
const RUNNING: i32 = 1;

impl Drop for TestNode {
    fn drop(&mut self) {
        self.stop_kubelet();
        // Tear the pods down through CRI so CNI releases their network, then stop containerd.
        let endpoint = format!("unix://{}", self.socket.display());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok(runtime) = kubelet::cri::Runtime::connect(&endpoint) else {
                    return;
                };
                for s in runtime
                    .list_pod_sandboxes(HashMap::new())
                    .await
                    .unwrap_or_default()
                {
                    let _ = runtime.stop_pod_sandbox(&s.id).await;
                    let _ = runtime.remove_pod_sandbox(&s.id).await;
                    let mut pod = Pod::default();
                    pod.metadata.uid = s.metadata.map(|m| m.uid);
                    kubelet::sandbox::remove_pod_cgroup("/", &pod);
                }
            });
        })
        .join();
        // Anything else a test ran directly through containerd.
        let ctr = |args: &[&str]| {
            Command::new("ctr")
                .arg("-a")
                .arg(&self.socket)
                .args(args)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        for ns in ctr(&["namespaces", "ls", "-q"]).lines() {
            for task in ctr(&["-n", ns, "tasks", "ls", "-q"]).lines() {
                ctr(&["-n", ns, "tasks", "kill", "-s", "SIGKILL", task]);
                for _ in 0..50 {
                    if ctr(&["-n", ns, "tasks", "rm", task]).is_empty()
                        && !ctr(&["-n", ns, "tasks", "ls", "-q"])
                            .lines()
                            .any(|t| t == task)
                    {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        if let Some(mut c) = self.containerd.take() {
            c.terminate();
        }
        let prefix = self.dir.path().display().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with(&prefix))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").arg("-l").arg(p).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
    }
}

async fn wait<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn pod(name: &str, node: &str, spec: serde_json::Value) -> Pod {
    let mut spec = spec;
    spec["nodeName"] = json!(node);
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }))
    .expect("pod")
}

async fn get_pod(pods: &Api<Pod>, name: &str) -> Option<Pod> {
    pods.get_opt(name).await.ok().flatten()
}

/// Creates pod `name` bound to `node`.
async fn create_pod(
    pods: &Api<Pod>,
    name: &str,
    node: &str,
    spec: serde_json::Value,
) -> Result<Pod> {
    Ok(pods
        .create(&PostParams::default(), &pod(name, node, spec))
        .await?)
}

/// Waits for pod `name` to exist and satisfy `ok`, and returns it.
async fn wait_pod(
    pods: &Api<Pod>,
    name: &str,
    what: &str,
    timeout: Duration,
    ok: impl Fn(&Pod) -> bool,
) -> Result<Pod> {
    let ok = &ok;
    wait(what, timeout, || async move {
        get_pod(pods, name).await.filter(|p| ok(p))
    })
    .await
}

/// Waits for exactly `count` pods matching `labels` to satisfy `ok`, and returns them.
async fn wait_pods(
    pods: &Api<Pod>,
    labels: &str,
    count: usize,
    what: &str,
    timeout: Duration,
    ok: impl Fn(&Pod) -> bool,
) -> Result<Vec<Pod>> {
    let ok = &ok;
    wait(what, timeout, || async move {
        let list = pods
            .list(&kube::api::ListParams::default().labels(labels))
            .await
            .ok()?;
        let matching: Vec<Pod> = list.items.into_iter().filter(|p| ok(p)).collect();
        (matching.len() == count).then_some(matching)
    })
    .await
}

/// The container ID of the pod's first container.
fn first_container_id(p: &Pod) -> Option<String> {
    p.status
        .clone()
        .and_then(|s| s.container_statuses)
        .and_then(|cs| cs[0].container_id.clone())
}

/// Waits for pod `name` to be gone.
async fn wait_pod_gone(pods: &Api<Pod>, name: &str, what: &str, timeout: Duration) -> Result<()> {
    wait(what, timeout, || async move {
        get_pod(pods, name).await.is_none().then_some(())
    })
    .await
}

/// Waits for node `name` to exist and satisfy `ok`.
async fn wait_node(
    nodes: &Api<Node>,
    name: &str,
    what: &str,
    timeout: Duration,
    ok: impl Fn(&Node) -> bool,
) -> Result<()> {
    let ok = &ok;
    wait(what, timeout, || async move {
        let n = nodes.get_opt(name).await.ok().flatten()?;
        ok(&n).then_some(())
    })
    .await
}

/// The status of the node's condition `kind`.
fn node_condition(n: &Node, kind: &str) -> Option<String> {
    n.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.status.clone())
}

/// Whether a container named `name` runs in `runtime` (`None` when the runtime does not answer).
async fn any_running_named(runtime: &kubelet::cri::Runtime, name: &str) -> Option<bool> {
    let cs = runtime
        .list_containers(HashMap::from([(
            "io.kubernetes.container.name".to_string(),
            name.to_string(),
        )]))
        .await
        .ok()?;
    Some(cs.iter().any(|c| c.state == RUNNING))
}

/// The stdout of `cat path` in container `id`, through the CRI.
async fn cat(runtime: &kubelet::cri::Runtime, id: &str, path: &str) -> Result<String> {
    let out = runtime
        .exec_sync(id, vec!["cat".to_string(), path.to_string()], 5)
        .await?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A GET of `path` on the node API: the whole response.
async fn node_get(node: &TestNode, path: &str) -> Result<String> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut s = node_api(node, &request).await?;
    Ok(read_until(&mut s, Duration::from_secs(5), |_| false).await)
}

/// A GET of `/pods` on the node API without the client certificate, with an optional bearer
/// token: the whole response.
async fn node_get_pods_as(node: &TestNode, token: Option<&str>) -> Result<String> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET /pods HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n");
    let mut s = node_api_as(node, &request, false).await?;
    Ok(read_until(&mut s, Duration::from_secs(10), |_| false).await)
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn condition(p: &Pod, kind: &str) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == kind && c.status == "True"))
}

/// Sends one HTTP/1.1 request to the kubelet's node API over TLS (trusting its self-signed CA)
/// as the apiserver (its kubelet client certificate) and returns the connection positioned
/// after the request.
async fn node_api(
    node: &TestNode,
    request: &str,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    node_api_as(node, request, true).await
}

/// [`node_api`], with or without the client certificate.
async fn node_api_as(
    node: &TestNode,
    request: &str,
    client_cert: bool,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName};
    use tokio::io::AsyncWriteExt;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(node.dir.path().join("kubelet/pki/kubelet.crt"))? {
        roots.add(cert?)?;
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let mut config = if client_cert {
        let pki = kubelet_pki();
        let certs = CertificateDer::pem_file_iter(pki.join("kubelet-client.crt"))?
            .collect::<Result<Vec<_>, _>>()?;
        builder.with_client_auth_cert(
            certs,
            PrivateKeyDer::from_pem_file(pki.join("kubelet-client.key"))?,
        )?
    } else {
        builder.with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", node.port)).await?;
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let mut tls = connector
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    tls.write_all(request.as_bytes()).await?;
    Ok(tls)
}

/// Reads from `stream` until `done` says the text so far is enough, or `timeout` passes.
async fn read_until(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    timeout: Duration,
    done: impl Fn(&str) -> bool,
) -> String {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + timeout;
    while !done(&String::from_utf8_lossy(&out)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads WebSocket frames until the connection closes or `done` is satisfied by the data of
/// `channel` (the first byte of each channel.k8s.io message).
async fn ws_read_channel(
    s: &mut (impl tokio::io::AsyncRead + Unpin),
    channel: u8,
    timeout: Duration,
    done: impl Fn(&[u8]) -> bool,
) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut data = Vec::new();
    let deadline = Instant::now() + timeout;
    let read = async {
        loop {
            let mut h = [0u8; 2];
            if s.read_exact(&mut h).await.is_err() {
                return;
            }
            let opcode = h[0] & 0x0f;
            let mut len = u64::from(h[1] & 0x7f);
            if len == 126 {
                let mut l = [0u8; 2];
                if s.read_exact(&mut l).await.is_err() {
                    return;
                }
                len = u64::from(u16::from_be_bytes(l));
            } else if len == 127 {
                let mut l = [0u8; 8];
                if s.read_exact(&mut l).await.is_err() {
                    return;
                }
                len = u64::from_be_bytes(l);
            }
            let mut payload = vec![0u8; len as usize];
            if s.read_exact(&mut payload).await.is_err() || opcode == 8 {
                return;
            }
            if payload.first() == Some(&channel) {
                data.extend_from_slice(&payload[1..]);
                if done(&data) {
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), read).await;
    data
}

/// Upgrades a node API request to WebSocket (`v4.channel.k8s.io`).
async fn ws_connect(
    node: &TestNode,
    path: &str,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use tokio::io::AsyncReadExt;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n"
    );
    let mut s = node_api(node, &request).await?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await?;
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    if !head.starts_with("HTTP/1.1 101") {
        bail!("no upgrade: {head}");
    }
    Ok(s)
}

/// Runs a command through the kubelet's `/exec` over WebSocket and returns its stdout.
async fn ws_exec(node: &TestNode, pod: &str, container: &str, command: &[&str]) -> Result<String> {
    let query: Vec<String> = command
        .iter()
        .map(|c| format!("command={}", c.replace('/', "%2F")))
        .collect();
    let path = format!(
        "/exec/default/{pod}/{container}?{}&stdout=true&stderr=true",
        query.join("&")
    );
    let mut s = ws_connect(node, &path).await?;
    let stdout = ws_read_channel(&mut s, 1, Duration::from_secs(20), |_| false).await;
    Ok(String::from_utf8_lossy(&stdout).into_owned())
}

/// Sends one masked binary WebSocket message on `channel`.
async fn ws_send(
    s: &mut (impl tokio::io::AsyncWrite + Unpin),
    channel: u8,
    data: &[u8],
) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut payload = vec![channel];
    payload.extend_from_slice(data);
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut frame = vec![0x82u8];
    if payload.len() < 126 {
        frame.push(0x80 | payload.len() as u8);
    } else {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    s.write_all(&frame).await?;
    Ok(())
}

struct Cluster {
    _etcd: Etcd,
    api: ApiServer,
    node: TestNode,
    client: kube::Client,
}

async fn cluster() -> Result<Cluster> {
    cluster_with("").await
}

/// A cluster whose kubelet configuration has `extra` appended.
async fn cluster_with(extra: &str) -> Result<Cluster> {
    cluster_opts(extra, &[]).await
}

/// A cluster with `extra` kubelet configuration and extra apiserver flags.
async fn cluster_opts(extra: &str, api_flags: &[&str]) -> Result<Cluster> {
    let etcd = Etcd::start()?;
    let client_flags = kubelet_client_flags();
    let mut flags: Vec<&str> = client_flags.iter().map(String::as_str).collect();
    flags.extend_from_slice(api_flags);
    let api = ApiServer::start_with(&etcd, &flags)?;
    let client = api.client().await?;
    let mut node = TestNode::start()?;
    node.start_kubelet_with(Some(&api.kubeconfig), extra)?;
    let nodes: Api<Node> = Api::all(client.clone());
    wait_node(
        &nodes,
        &node.name,
        "the node to register Ready",
        Duration::from_secs(30),
        |n| node_condition(n, "Ready").as_deref() == Some("True"),
    )
    .await
    .with_context(|| node.kubelet_log())?;
    Ok(Cluster {
        _etcd: etcd,
        api,
        node,
        client,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_registers_and_pods_run_and_stop() -> Result<()> {
    let c = cluster().await?;
    let node: Node = Api::<Node>::all(c.client.clone()).get(&c.node.name).await?;
    let labels = node.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("kubernetes.io/hostname"), Some(&c.node.name));
    assert_eq!(
        labels.get("kubernetes.io/os").map(String::as_str),
        Some("linux")
    );
    let status = node.status.clone().unwrap_or_default();
    let capacity = status.capacity.clone().unwrap_or_default();
    for r in ["cpu", "memory", "pods", "ephemeral-storage"] {
        assert!(capacity.contains_key(r), "capacity lacks {r}");
        assert!(
            status
                .allocatable
                .as_ref()
                .is_some_and(|a| a.contains_key(r)),
            "allocatable lacks {r}"
        );
    }
    let info = status.node_info.clone().unwrap_or_default();
    assert!(
        info.container_runtime_version.starts_with("containerd://"),
        "{info:?}"
    );
    assert_eq!(info.kubelet_version, "v1.33.0");
    assert!(status
        .addresses
        .as_ref()
        .is_some_and(|a| a.iter().any(|a| a.type_ == "InternalIP")));
    let conditions: Vec<String> = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.type_)
        .collect();
    for kind in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
        assert!(
            conditions.contains(&kind.to_string()),
            "missing condition {kind}"
        );
    }
    let lease: Lease = Api::namespaced(c.client.clone(), "kube-node-lease")
        .get(&c.node.name)
        .await?;
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity),
        Some(c.node.name.clone())
    );
    let nodes: Api<Node> = Api::all(c.client.clone());
    wait_node(
        &nodes,
        &c.node.name,
        "node images",
        Duration::from_secs(15),
        |n| {
            n.status
                .as_ref()
                .and_then(|s| s.images.as_ref())
                .is_some_and(|images| {
                    images
                        .iter()
                        .any(|i| i.names.iter().flatten().any(|n| n.contains("busybox:1")))
                })
        },
    )
    .await?;

    // A long-running pod becomes Running and Ready with an IP, its env resolved.
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let spec = json!({
        "terminationGracePeriodSeconds": 5,
        "containers": [{
            "name": "main", "image": "busybox:1",
            "command": ["sh", "-c", "echo pod=$POD_NAME ip=$POD_IP; trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done"],
            "env": [
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
            ]
        }]
    });
    create_pod(&pods, "sleeper", &c.node.name, spec).await?;
    let running = wait(
        "the pod to be Running and Ready",
        Duration::from_secs(60),
        || {
            let pods = pods.clone();
            async move {
                let p = get_pod(&pods, "sleeper").await?;
                (phase(&p) == "Running"
                    && condition(&p, "Ready")
                    && p.status.as_ref()?.pod_ip.is_some())
                .then_some(p)
            }
        },
    )
    .await
    .with_context(|| c.node.kubelet_log())?;
    let status = running.status.clone().unwrap_or_default();
    let ip = status.pod_ip.clone().unwrap_or_default();
    assert!(ip.starts_with("10."), "pod IP {ip}");
    assert!(status.host_ip.is_some());
    assert!(status.start_time.is_some());
    let cs = &status.container_statuses.unwrap_or_default()[0];
    assert!(
        cs.ready
            && cs
                .container_id
                .as_deref()
                .is_some_and(|id| id.starts_with("containerd://"))
    );
    assert_eq!(cs.restart_count, 0);
    for kind in [
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
        "Ready",
    ] {
        assert!(condition(&running, kind), "condition {kind} not True");
    }
    // The container's output is in upstream's log layout.
    let uid = running.metadata.uid.clone().unwrap_or_default();
    let log = c
        .node
        .logs()
        .join(format!("default_sleeper_{uid}/main/0.log"));
    let text = wait("the container log", Duration::from_secs(10), || {
        let log = log.clone();
        async move {
            std::fs::read_to_string(&log)
                .ok()
                .filter(|t| t.contains("pod=sleeper"))
        }
    })
    .await?;
    assert!(text.contains(&format!("ip={ip}")), "{text}");
    assert!(
        text.contains(" stdout F pod=sleeper"),
        "CRI log format: {text}"
    );

    // The node API serves the logs (tail, follow) and exec.
    let tail = node_get(
        &c.node,
        "/containerLogs/default/sleeper/main?tailLines=1&timestamps=true",
    )
    .await?;
    assert!(tail.starts_with("HTTP/1.1 200"), "{tail}");
    let body = tail.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert_eq!(body.lines().count(), 1, "{body}");
    assert!(body.contains("Z tick "), "{body}");
    let mut s = node_api(
        &c.node,
        "GET /containerLogs/default/sleeper/main?follow=true HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await?;
    let followed = read_until(&mut s, Duration::from_secs(10), |t| {
        let ticks: Vec<u32> = t
            .lines()
            .filter_map(|l| l.trim().strip_prefix("tick ")?.parse().ok())
            .collect();
        ticks
            .iter()
            .max()
            .zip(ticks.iter().min())
            .is_some_and(|(max, min)| max - min >= 2)
    })
    .await;
    assert!(followed.contains("pod=sleeper"), "{followed}");
    let resolv = ws_exec(&c.node, "sleeper", "main", &["cat", "/etc/resolv.conf"]).await?;
    assert!(resolv.contains("nameserver 10.96.0.10"), "{resolv}");
    let hosts = ws_exec(&c.node, "sleeper", "main", &["cat", "/etc/hosts"]).await?;
    assert!(hosts.contains(&format!("{ip}\tsleeper")), "{hosts}");
    // Usage and metrics.
    let summary = node_get(&c.node, "/stats/summary").await?;
    let summary: serde_json::Value =
        serde_json::from_str(summary.split("\r\n\r\n").nth(1).unwrap_or_default())?;
    assert_eq!(summary["node"]["nodeName"], json!(c.node.name));
    let pod_stats = summary["pods"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["podRef"]["name"] == "sleeper"))
        .cloned()
        .context("pod stats")?;
    assert!(
        pod_stats["containers"][0]["memory"]["workingSetBytes"]
            .as_u64()
            .is_some_and(|b| b > 0),
        "{pod_stats}"
    );
    let resource = node_get(&c.node, "/metrics/resource").await?;
    assert!(resource.contains("container_cpu_usage_seconds_total{container=\"main\",namespace=\"default\",pod=\"sleeper\"}"), "{resource}");
    let metrics = node_get(&c.node, "/metrics").await?;
    assert!(
        metrics.contains("kubelet_pleg_relist_duration_seconds_bucket"),
        "{metrics}"
    );

    // The kubelet reports what it did as events.
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(c.client.clone(), "default");
    let reasons: Vec<String> = events
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("sleeper"))
        .filter(|e| e.reporting_controller.as_deref() == Some("kubelet"))
        .filter_map(|e| e.reason)
        .collect();
    for reason in ["Pulled", "Created", "Started"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "no {reason} event in {reasons:?}"
        );
    }

    // Deleting the pod stops its container within the grace period and removes the object.
    let deleted_at = Instant::now();
    pods.delete("sleeper", &DeleteParams::default()).await?;
    wait_pod_gone(
        &pods,
        "sleeper",
        "the pod object to go",
        Duration::from_secs(20),
    )
    .await
    .with_context(|| c.node.kubelet_log())?;
    assert!(
        deleted_at.elapsed() < Duration::from_secs(10),
        "took {:?}",
        deleted_at.elapsed()
    );
    assert!(c.node.running_containers(&uid).await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_policies_and_exit_codes() -> Result<()> {
    let c = cluster().await?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let job = json!({"restartPolicy": "Never", "containers": [{"name": "job", "image": "busybox:1", "command": ["sh", "-c", "echo done"]}]});
    create_pod(&pods, "job", &c.node.name, job).await?;
    let crash = json!({"restartPolicy": "Always", "containers": [{"name": "crash", "image": "busybox:1", "command": ["sh", "-c", "exit 3"]}]});
    create_pod(&pods, "crash", &c.node.name, crash).await?;
    let failing = json!({"restartPolicy": "Never", "initContainers": [{"name": "init", "image": "busybox:1", "command": ["true"]}],
        "containers": [{"name": "fail", "image": "busybox:1", "command": ["sh", "-c", "exit 2"]}]});
    create_pod(&pods, "fail", &c.node.name, failing).await?;
    let secured = json!({"restartPolicy": "Never",
        "securityContext": {"runAsGroup": 3000},
        "containers": [{"name": "check", "image": "busybox:1",
            "command": ["sh", "-c", "echo uid=$(id -u) gid=$(id -g); echo limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); touch /x 2>/dev/null && echo rootfs=rw || echo rootfs=ro"],
            "securityContext": {"runAsUser": 1000, "readOnlyRootFilesystem": true},
            "resources": {"limits": {"memory": "64Mi", "cpu": "200m"}}}]});
    let secured = create_pod(&pods, "secured", &c.node.name, secured).await?;
    let host = json!({"hostNetwork": true, "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "host", "image": "busybox:1", "command": ["sleep", "3600"]}]});
    create_pod(&pods, "host", &c.node.name, host).await?;

    let done = wait_pod(
        &pods,
        "job",
        "the job pod to succeed",
        Duration::from_secs(60),
        |p| phase(p) == "Succeeded",
    )
    .await
    .with_context(|| c.node.kubelet_log())?;
    let term = done
        .status
        .unwrap_or_default()
        .container_statuses
        .unwrap_or_default()[0]
        .state
        .clone()
        .and_then(|s| s.terminated)
        .context("terminated state")?;
    assert_eq!(
        (term.exit_code, term.reason.as_deref()),
        (0, Some("Completed"))
    );

    let failed = wait_pod(
        &pods,
        "fail",
        "the failing pod to fail",
        Duration::from_secs(60),
        |p| phase(p) == "Failed",
    )
    .await?;
    let status = failed.status.unwrap_or_default();
    let term = status.container_statuses.unwrap_or_default()[0]
        .state
        .clone()
        .and_then(|s| s.terminated)
        .context("terminated")?;
    assert_eq!((term.exit_code, term.reason.as_deref()), (2, Some("Error")));
    let init = status.init_container_statuses.unwrap_or_default();
    assert_eq!(
        init[0]
            .state
            .clone()
            .and_then(|s| s.terminated)
            .map(|t| t.exit_code),
        Some(0)
    );

    let crashing = wait(
        "CrashLoopBackOff with restarts",
        Duration::from_secs(60),
        || {
            let pods = pods.clone();
            async move {
                let p = get_pod(&pods, "crash").await?;
                let cs = p.status.clone()?.container_statuses?.first()?.clone();
                let waiting = cs.state.clone()?.waiting?.reason?;
                (waiting == "CrashLoopBackOff" && cs.restart_count >= 2).then_some(cs)
            }
        },
    )
    .await
    .with_context(|| c.node.kubelet_log())?;
    let last = crashing
        .last_state
        .and_then(|s| s.terminated)
        .context("lastState")?;
    assert_eq!((last.exit_code, last.reason.as_deref()), (3, Some("Error")));
    assert_eq!(
        phase(&get_pod(&pods, "crash").await.context("pod")?),
        "Running"
    );

    // Security context and resource limits reach the container.
    wait_pod(
        &pods,
        "secured",
        "the secured pod to finish",
        Duration::from_secs(30),
        |p| phase(p) == "Succeeded",
    )
    .await
    .with_context(|| c.node.kubelet_log())?;
    let uid = secured.metadata.uid.unwrap_or_default();
    let log = std::fs::read_to_string(
        c.node
            .logs()
            .join(format!("default_secured_{uid}/check/0.log")),
    )?;
    for expected in ["uid=1000 gid=3000", "limit=67108864", "rootfs=ro"] {
        assert!(log.contains(expected), "{expected} not in {log}");
    }

    // A hostNetwork pod has the node's address.
    let host = wait_pod(
        &pods,
        "host",
        "the hostNetwork pod to run",
        Duration::from_secs(30),
        |p| condition(p, "Ready"),
    )
    .await
    .with_context(|| c.node.kubelet_log())?;
    let status = host.status.unwrap_or_default();
    assert!(status.pod_ip.is_some());
    assert_eq!(status.pod_ip, status.host_ip);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_ports_and_config_volumes() -> Result<()> {
    // Service account token signing, for the projected token volume.
    let keys = tempfile::tempdir()?;
    let key = rcgen::KeyPair::generate()?;
    std::fs::write(keys.path().join("sa.key"), key.serialize_pem())?;
    std::fs::write(keys.path().join("sa.pub"), key.public_key_pem())?;
    // With an authenticator configured, the harness's token must be a known one.
    std::fs::write(
        keys.path().join("tokens.csv"),
        "admin-token,admin,admin,system:masters\n",
    )?;
    let flags = [
        format!(
            "--token-auth-file={}",
            keys.path().join("tokens.csv").display()
        ),
        format!(
            "--service-account-signing-key-file={}",
            keys.path().join("sa.key").display()
        ),
        format!(
            "--service-account-key-file={}",
            keys.path().join("sa.pub").display()
        ),
        "--service-account-issuer=https://kubernetes.default.svc".to_string(),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let c = cluster_opts("", &flags).await?;
    let sa: k8s_openapi::api::core::v1::ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "default"}}))?;
    let _ =
        Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(c.client.clone(), "default")
            .create(&PostParams::default(), &sa)
            .await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "cfg"}, "data": {"greeting": "hello"}}),
    )?;
    cms.create(&PostParams::default(), &cm).await?;
    let spec = json!({
        "containers": [{
            "name": "web", "image": "busybox:1",
            "command": ["sh", "-c", "mkdir -p /www && echo \"$GREETING from $(hostname)\" > /www/index.html && httpd -f -p 8080 -h /www"],
            "env": [{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}}],
            "ports": [{"containerPort": 8080, "name": "http"}],
            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
            "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}, {"name": "api", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]
        }, {
            "name": "flaky", "image": "busybox:1",
            "command": ["sh", "-c", "touch /tmp/alive; sleep 3600"],
            "livenessProbe": {"exec": {"command": ["sh", "-c", "test -e /tmp/alive && rm /tmp/alive"]}, "periodSeconds": 1, "failureThreshold": 2}
        }],
        "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "api", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
            {"configMap": {"name": "cfg", "items": [{"key": "greeting", "path": "greeting.txt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}
        ]}}]
    });
    create_pod(&pods, "web", &c.node.name, spec).await?;
    let running = wait(
        "the web container to be ready",
        Duration::from_secs(60),
        || {
            let pods = pods.clone();
            async move {
                let p = get_pod(&pods, "web").await?;
                let ready = p
                    .status
                    .as_ref()?
                    .container_statuses
                    .as_ref()?
                    .iter()
                    .any(|c| c.name == "web" && c.ready);
                ready.then_some(p)
            }
        },
    )
    .await
    .with_context(|| c.node.kubelet_log())?;
    let ip = running.status.and_then(|s| s.pod_ip).context("pod IP")?;
    // The httpd answers on the pod IP from the host.
    let body = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect((ip.as_str(), 8080))?;
        s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        out
    };
    assert!(body.contains("hello from web"), "{body}");

    // A failing liveness probe restarts the container.
    wait(
        "the liveness probe to restart flaky",
        Duration::from_secs(60),
        || {
            let pods = pods.clone();
            async move {
                let p = get_pod(&pods, "web").await?;
                let cs = p.status?.container_statuses?;
                cs.iter()
                    .any(|c| c.name == "flaky" && c.restart_count >= 1)
                    .then_some(())
            }
        },
    )
    .await
    .with_context(|| c.node.kubelet_log())?;

    // A configMap update reaches the running container's volume.
    let runtime = c.node.runtime();
    let uid = get_pod(&pods, "web")
        .await
        .and_then(|p| p.metadata.uid)
        .context("uid")?;
    let web = runtime
        .list_containers(HashMap::from([
            ("io.kubernetes.pod.uid".to_string(), uid.clone()),
            (
                "io.kubernetes.container.name".to_string(),
                "web".to_string(),
            ),
        ]))
        .await?
        .into_iter()
        .find(|c| c.state == RUNNING)
        .context("web container")?;
    let read = || async { cat(&runtime, &web.id, "/etc/cfg/greeting").await.ok() };
    assert_eq!(read().await.as_deref(), Some("hello"));
    cms.patch(
        "cfg",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"greeting": "bonjour"}})),
    )
    .await?;
    wait(
        "the updated configMap in the volume",
        Duration::from_secs(40),
        || async { read().await.filter(|t| t == "bonjour").map(|_| ()) },
    )
    .await?;
    // The projected volume holds a bound service account token, the configMap key and the namespace.
    let token = cat(
        &runtime,
        &web.id,
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
    )
    .await?;
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let ns = cat(
        &runtime,
        &web.id,
        "/var/run/secrets/kubernetes.io/serviceaccount/namespace",
    )
    .await?;
    assert_eq!(ns, "default");
    // Port-forward through the node API reaches the pod's port.
    let mut pf = ws_connect(&c.node, "/portforward/default/web?port=8080").await?;
    ws_send(&mut pf, 0, b"GET / HTTP/1.0\r\n\r\n").await?;
    let answer = ws_read_channel(&mut pf, 0, Duration::from_secs(10), |d| {
        String::from_utf8_lossy(d).contains("from web")
    })
    .await;
    assert!(
        String::from_utf8_lossy(&answer).contains("hello from web"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // Cluster DNS settings.
    let resolv = cat(&runtime, &web.id, "/etc/resolv.conf").await?;
    assert!(resolv.contains("nameserver 10.96.0.10"), "{resolv}");
    assert!(
        resolv.contains("search default.svc.cluster.local svc.cluster.local cluster.local"),
        "{resolv}"
    );
    assert!(resolv.contains("ndots:5"), "{resolv}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_pods_run_standalone_and_get_mirrors() -> Result<()> {
    let etcd = Etcd::start()?;
    let mut api = ApiServer::start(&etcd)?;
    let client = api.client().await?;
    api.process.terminate();
    let mut node = TestNode::start()?;
    std::fs::write(
        node.manifests().join("static-web.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: static-web\n  namespace: kube-system\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: web\n    image: busybox:1\n    command: [sleep, '3600']\n",
    )?;
    // A container that is not Kubernetes', in another containerd namespace.
    let socket = node.socket.clone();
    let ctr = move |args: &[&str]| -> Result<String> {
        let out = Command::new("ctr")
            .arg("-a")
            .arg(&socket)
            .args(args)
            .output()?;
        if !out.status.success() {
            bail!("ctr {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let busybox = images().join("busybox.tar");
    ctr(&[
        "-n",
        "bystanders",
        "images",
        "import",
        &busybox.display().to_string(),
    ])?;
    ctr(&[
        "-n",
        "bystanders",
        "run",
        "-d",
        "docker.io/library/busybox:1",
        "bystander",
        "sleep",
        "600",
    ])?;
    node.start_kubelet(Some(&api.kubeconfig))?;
    // With the apiserver down the static pod still runs.
    let runtime = node.runtime();
    wait(
        "the static pod's container",
        Duration::from_secs(60),
        || async { any_running_named(&runtime, "web").await?.then_some(()) },
    )
    .await
    .with_context(|| node.kubelet_log())?;
    // The kubelet leaves containers it did not create alone.
    let tasks = ctr(&["-n", "bystanders", "tasks", "ls"])?;
    assert!(
        tasks
            .lines()
            .any(|l| l.starts_with("bystander") && l.contains("RUNNING")),
        "{tasks}"
    );
    api.restart()?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let name = format!("static-web-{}", node.name);
    let mirror = wait_pod(
        &pods,
        &name,
        "the mirror pod",
        Duration::from_secs(60),
        |p| phase(p) == "Running",
    )
    .await
    .with_context(|| node.kubelet_log())?;
    assert!(mirror
        .metadata
        .annotations
        .unwrap_or_default()
        .contains_key("kubernetes.io/config.mirror"));
    // Removing the manifest removes the pod and its mirror.
    std::fs::remove_file(node.manifests().join("static-web.yaml"))?;
    wait_pod_gone(
        &pods,
        &name,
        "the mirror pod to go",
        Duration::from_secs(40),
    )
    .await?;
    wait(
        "the static container to stop",
        Duration::from_secs(40),
        || async { (!any_running_named(&runtime, "web").await?).then_some(()) },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_kubelet_adopts_running_containers() -> Result<()> {
    let mut c = cluster().await?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let spec = json!({"containers": [{"name": "main", "image": "busybox:1", "command": ["sleep", "3600"]}]});
    create_pod(&pods, "keep", &c.node.name, spec).await?;
    let before = wait_pod(
        &pods,
        "keep",
        "the pod to run",
        Duration::from_secs(60),
        |p| condition(p, "Ready"),
    )
    .await
    .with_context(|| c.node.kubelet_log())?;
    let first = first_container_id(&before);
    c.node.stop_kubelet();
    c.node.start_kubelet(Some(&c.api.kubeconfig))?;
    // Give the new kubelet time to sync the pod, then check it kept the container.
    let lease_api: Api<Lease> = Api::namespaced(c.client.clone(), "kube-node-lease");
    let renewed = lease_api
        .get(&c.node.name)
        .await?
        .spec
        .and_then(|s| s.renew_time);
    wait("the restarted kubelet to renew its lease", Duration::from_secs(30), || {
        let lease_api = lease_api.clone();
        let name = c.node.name.clone();
        let renewed = renewed.clone();
        async move { (lease_api.get(&name).await.ok()?.spec?.renew_time != renewed).then_some(()) }
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = get_pod(&pods, "keep").await.context("pod")?;
    assert_eq!(first_container_id(&after), first);
    let cs = &after
        .status
        .clone()
        .unwrap_or_default()
        .container_statuses
        .unwrap_or_default()[0];
    assert_eq!(cs.restart_count, 0);
    assert!(cs.ready);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_pressure_evicts_and_rejects_pods() -> Result<()> {
    // A threshold no machine meets: the node is under memory pressure from the start.
    let c =
        cluster_with("evictionHard:\n  memory.available: 1000Ti\n  nodefs.available: 1%\n").await?;
    let nodes: Api<Node> = Api::all(c.client.clone());
    wait_node(
        &nodes,
        &c.node.name,
        "MemoryPressure",
        Duration::from_secs(30),
        |n| node_condition(n, "MemoryPressure").as_deref() == Some("True"),
    )
    .await?;
    // BestEffort pods are turned away by admission.
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let best_effort = json!({"containers": [{"name": "main", "image": "busybox:1", "command": ["sleep", "3600"]}]});
    create_pod(&pods, "rejected", &c.node.name, best_effort).await?;
    let rejected = wait_pod(
        &pods,
        "rejected",
        "the BestEffort pod to be rejected",
        Duration::from_secs(30),
        |p| phase(p) == "Failed",
    )
    .await
    .with_context(|| c.node.kubelet_log())?;
    let status = rejected.status.unwrap_or_default();
    assert_eq!(status.reason.as_deref(), Some("Evicted"));
    assert!(status
        .message
        .unwrap_or_default()
        .contains("MemoryPressure"));
    // A Burstable pod is admitted, then evicted by the eviction manager.
    let burstable = json!({"containers": [{"name": "main", "image": "busybox:1", "command": ["sleep", "3600"],
        "resources": {"requests": {"cpu": "10m"}}}]});
    let created = create_pod(&pods, "victim", &c.node.name, burstable).await?;
    let evicted = wait_pod(
        &pods,
        "victim",
        "the pod to be evicted",
        Duration::from_secs(60),
        |p| phase(p) == "Failed",
    )
    .await
    .with_context(|| c.node.kubelet_log())?;
    let status = evicted.status.unwrap_or_default();
    assert_eq!(status.reason.as_deref(), Some("Evicted"));
    assert!(
        status
            .message
            .clone()
            .unwrap_or_default()
            .contains("low on resource: memory"),
        "{status:?}"
    );
    let uid = created.metadata.uid.unwrap_or_default();
    wait(
        "the evicted pod's containers to stop",
        Duration::from_secs(30),
        || {
            let node = &c.node;
            let uid = uid.clone();
            async move {
                node.running_containers(&uid)
                    .await
                    .ok()
                    .filter(|r| r.is_empty())
                    .map(|_| ())
            }
        },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_logs_rotate_by_size() -> Result<()> {
    let c = cluster_with("containerLogMaxSize: 2Ki\ncontainerLogMaxFiles: 3\n").await?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let spec = json!({"containers": [{"name": "chatty", "image": "busybox:1",
        "command": ["sh", "-c", "while true; do echo 0123456789012345678901234567890123456789012345678901234567890123456789; sleep 0.05; done"]}]});
    let created = create_pod(&pods, "chatty", &c.node.name, spec).await?;
    let uid = created.metadata.uid.unwrap_or_default();
    let dir = c.node.logs().join(format!("default_chatty_{uid}/chatty"));
    // The second rotation compresses the first rotated file.
    let gz = wait("a compressed rotated log", Duration::from_secs(60), || {
        let dir = dir.clone();
        async move {
            std::fs::read_dir(&dir)
                .ok()?
                .flatten()
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().ends_with(".gz"))
        }
    })
    .await
    .with_context(|| c.node.kubelet_log())?;
    let name = gz
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    assert!(name.starts_with("0.log."), "{name}");
    let unzipped = Command::new("gzip").arg("-dc").arg(&gz).output()?;
    assert!(
        String::from_utf8_lossy(&unzipped.stdout).contains(" stdout F 0123456789"),
        "{name} holds CRI log lines"
    );
    // Later passes keep at most containerLogMaxFiles files.
    tokio::time::sleep(Duration::from_secs(21)).await;
    let names: Vec<String> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.len() <= 3, "{names:?}");
    assert!(names.iter().any(|n| n.ends_with(".gz")), "{names:?}");
    let live = std::fs::read_to_string(dir.join("0.log"))?;
    assert!(
        live.contains(" stdout F 0123456789"),
        "the runtime writes to the reopened file"
    );
    // kubectl logs reads the live file.
    let logs = integration_tests::output_text(&c.api.kubectl(&["logs", "chatty", "--tail=1"])?);
    assert!(logs.contains("0123456789"), "kubectl logs: {logs}");
    Ok(())
}

/// Pod start-up latency (create to Ready, as a watch sees it) for 100 pods on one node with a
/// local image, created at once and then paced; run by `make bench` with `--ignored
/// --nocapture`. Prints p50 and p99 of each run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_pod_startup_latency() -> Result<()> {
    // FERROKUBE_BENCH_PODS overrides the number of pods.
    let pods_wanted: usize = std::env::var("FERROKUBE_BENCH_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    // All at once: latency includes waiting for the runtime's throughput.
    startup_latency(pods_wanted, Duration::ZERO).await?;
    // One every 100 ms, as upstream's node density latency benchmark paces its pods: latency
    // of each pod with the runtime not saturated by a burst.
    startup_latency(pods_wanted, Duration::from_millis(100)).await
}

/// Creates `pods_wanted` pods, `interval` apart, on a fresh node and prints create-to-Ready
/// percentiles as seen by a watch.
async fn startup_latency(pods_wanted: usize, interval: Duration) -> Result<()> {
    use futures::StreamExt;
    use kube::runtime::{watcher, WatchStreamExt};
    let c = cluster_with("maxPods: 200\n").await?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let ready_at: std::sync::Arc<tokio::sync::Mutex<HashMap<String, Instant>>> = Default::default();
    let watch = {
        let ready_at = ready_at.clone();
        let stream = watcher(pods.clone(), watcher::Config::default()).applied_objects();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(Ok(p)) = stream.next().await {
                if condition(&p, "Ready") {
                    let name = p.metadata.name.clone().unwrap_or_default();
                    ready_at
                        .lock()
                        .await
                        .entry(name)
                        .or_insert_with(Instant::now);
                }
            }
        })
    };
    let spec = json!({"terminationGracePeriodSeconds": 1, "containers": [{"name": "main", "image": "busybox:1", "command": ["sleep", "3600"]}]});
    let mut created_at = HashMap::new();
    for i in 0..pods_wanted {
        let name = format!("bench-{i}");
        created_at.insert(name.clone(), Instant::now());
        create_pod(&pods, &name, &c.node.name, spec.clone()).await?;
        tokio::time::sleep(interval).await;
    }
    wait("all pods Ready", Duration::from_secs(180), || {
        let ready_at = ready_at.clone();
        async move { (ready_at.lock().await.len() >= pods_wanted).then_some(()) }
    })
    .await
    .with_context(|| c.node.kubelet_log())?;
    watch.abort();
    // FERROKUBE_BENCH_LOG keeps the kubelet's log for a per-phase breakdown.
    if let Some(path) = std::env::var_os("FERROKUBE_BENCH_LOG") {
        std::fs::write(path, c.node.kubelet_log())?;
    }
    let ready = ready_at.lock().await;
    let mut latencies: Vec<Duration> = created_at
        .iter()
        .filter_map(|(n, t)| ready.get(n).map(|r| r.duration_since(*t)))
        .collect();
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    let pacing = if interval.is_zero() {
        "created at once".to_string()
    } else {
        format!("one every {interval:?}")
    };
    println!(
        "pod start-up latency (create to Ready), {pods_wanted} pods on one node, {pacing}: p50 {:?} p99 {:?} (target p99 < 1s)",
        p(0.50),
        p(0.99)
    );
    Ok(())
}

/// The control plane's other daemons, from the workspace's built binaries.
fn start_control_plane(api: &ApiServer, dir: &Path) -> Result<(Process, Process)> {
    let mut scheduler = Command::new(binary("kube-scheduler"));
    scheduler
        .arg("--kubeconfig")
        .arg(&api.kubeconfig)
        .arg(format!("--secure-port={}", free_port()))
        .arg("--leader-elect=false");
    let scheduler = Process::spawn(scheduler, dir.join("scheduler.log"))?;
    let mut cm = Command::new(binary("kube-controller-manager"));
    cm.arg("--kubeconfig")
        .arg(&api.kubeconfig)
        .arg(format!("--secure-port={}", free_port()))
        .arg("--leader-elect=false")
        .arg("--node-monitor-period=1s")
        .arg("--node-monitor-grace-period=8s");
    let cm = Process::spawn(cm, dir.join("controller-manager.log"))?;
    Ok((scheduler, cm))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_pods_run_and_node_lifecycle_follows_the_kubelet() -> Result<()> {
    use k8s_openapi::api::apps::v1::Deployment;
    let mut c = cluster().await?;
    let logs = tempfile::tempdir()?;
    let _control_plane = start_control_plane(&c.api, logs.path())?;
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "web", "image": "busybox:1", "command": ["sleep", "3600"]}]}
            }
        }
    }))?;
    Api::<Deployment>::namespaced(c.client.clone(), "default")
        .create(&PostParams::default(), &deployment)
        .await?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let ready = wait_pods(
        &pods,
        "app=web",
        3,
        "3 Deployment pods Running and Ready with IPs",
        Duration::from_secs(90),
        |p| {
            phase(p) == "Running"
                && condition(p, "Ready")
                && p.status.as_ref().and_then(|s| s.pod_ip.as_ref()).is_some()
        },
    )
    .await
    .with_context(|| {
        format!(
            "{}\n--- scheduler/controller-manager logs in {}",
            c.node.kubelet_log(),
            logs.path().display()
        )
    })?;
    let ids: Vec<Option<String>> = ready.iter().map(first_container_id).collect();

    // Without its kubelet the node goes NotReady (the node lifecycle controller marks it
    // Unknown once the lease expires), and Ready again once the kubelet is back.
    let nodes: Api<Node> = Api::all(c.client.clone());
    c.node.stop_kubelet();
    wait_node(
        &nodes,
        &c.node.name,
        "the node to go NotReady",
        Duration::from_secs(60),
        |n| node_condition(n, "Ready").is_some_and(|s| s != "True"),
    )
    .await?;
    c.node.start_kubelet(Some(&c.api.kubeconfig))?;
    wait_node(
        &nodes,
        &c.node.name,
        "the node to be Ready again",
        Duration::from_secs(60),
        |n| node_condition(n, "Ready").as_deref() == Some("True"),
    )
    .await
    .with_context(|| c.node.kubelet_log())?;
    // The restarted kubelet adopted the running containers instead of restarting them.
    let after = wait_pods(
        &pods,
        "app=web",
        3,
        "the pods Ready on the returned node",
        Duration::from_secs(60),
        |p| condition(p, "Ready"),
    )
    .await?;
    for p in &after {
        let cs = p
            .status
            .clone()
            .and_then(|s| s.container_statuses)
            .unwrap_or_default();
        assert!(
            ids.contains(&cs[0].container_id),
            "container of {:?} was replaced",
            p.metadata.name
        );
        assert_eq!(cs[0].restart_count, 0);
    }
    Ok(())
}

/// `kubectl logs`, `exec` and `port-forward` go through the apiserver, which proxies them to
/// the kubelet of the pod's node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_exec_and_port_forward_through_the_apiserver() -> Result<()> {
    let c = cluster().await?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let script =
        "echo hello-logs; mkdir -p /w; echo served > /w/index.html; httpd -f -p 8080 -h /w";
    create_pod(
        &pods,
        "talk",
        &c.node.name,
        json!({"terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "busybox:1", "command": ["sh", "-c", script]}]}),
    )
    .await?;
    wait_pod(
        &pods,
        "talk",
        "the pod to run",
        Duration::from_secs(60),
        |p| phase(p) == "Running",
    )
    .await
    .with_context(|| c.node.kubelet_log())?;

    let text = |o: std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let logs = text(c.api.kubectl(&["logs", "talk"])?);
    assert!(logs.contains("hello-logs"), "kubectl logs: {logs}");
    let exec = c
        .api
        .kubectl(&["exec", "talk", "--", "cat", "/etc/resolv.conf"])?;
    assert!(
        exec.status.success(),
        "kubectl exec: {}",
        text(exec.clone())
    );
    let exec = text(exec);
    assert!(exec.contains("nameserver"), "kubectl exec: {exec}");
    // The command's exit status travels on the error channel and the session closes cleanly.
    let failing = c
        .api
        .kubectl(&["exec", "talk", "--", "sh", "-c", "echo oops >&2; exit 3"])?;
    let failing_text = text(failing.clone());
    assert_eq!(
        failing.status.code(),
        Some(3),
        "kubectl exec: {failing_text}"
    );
    assert!(
        failing_text.contains("command terminated with exit code 3")
            && !failing_text.contains("error reading from error stream"),
        "kubectl exec: {failing_text}"
    );

    let port = free_port();
    let mut forward = std::process::Command::new("kubectl")
        .env("KUBECONFIG", &c.api.kubeconfig)
        .args(["port-forward", "pod/talk", &format!("{port}:8080")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let body = wait(
        "a response through port-forward",
        Duration::from_secs(20),
        || async move {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
            s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
            let mut out = String::new();
            s.read_to_string(&mut out).ok()?;
            out.contains("served").then_some(out)
        },
    )
    .await;
    let _ = forward.kill();
    let _ = forward.wait();
    assert!(body?.contains("served"));

    // kubectl 1.33 took the WebSocket paths: v5.channel.k8s.io for exec and the SPDY tunnel for
    // port-forward, both translated by the kubelet.
    let log = c.node.kubelet_log();
    let streams: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("serving a WebSocket stream"))
        .collect();
    assert!(
        streams.iter().any(|l| l.contains("v5.channel.k8s.io")),
        "no v5 WebSocket exec: {streams:?}"
    );
    assert!(
        streams
            .iter()
            .any(|l| l.contains("SPDY/3.1+portforward.k8s.io")),
        "no WebSocket port-forward: {streams:?}"
    );
    // Piped stdin needs its end signalled; kubectl falls back to SPDY for that and the command
    // sees end of input.
    let piped = text(
        c.api
            .kubectl_stdin(&["exec", "-i", "talk", "--", "cat"], Some("piped-input\n"))?,
    );
    assert!(piped.contains("piped-input"), "kubectl exec -i: {piped}");
    Ok(())
}

/// The node API authenticates and authorizes as upstream's kubelet does by default: no
/// credentials get 401, a token whose user may not `get nodes/proxy` gets 403, while the
/// apiserver (by its kubelet client certificate) still serves `kubectl logs` and `exec`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_api_authenticates_and_authorizes_through_the_apiserver() -> Result<()> {
    let tokens = tempfile::tempdir()?;
    let file = tokens.path().join("tokens.csv");
    std::fs::write(
        &file,
        "admin-token,admin,admin,system:masters\nnobody-token,nobody,nobody\n",
    )?;
    let token_flag = format!("--token-auth-file={}", file.display());
    let c = cluster_opts("", &[&token_flag, "--authorization-mode=Node,RBAC"]).await?;
    let anonymous = node_get_pods_as(&c.node, None).await?;
    assert!(
        anonymous.starts_with("HTTP/1.1 401"),
        "anonymous: {anonymous}"
    );
    let nobody = node_get_pods_as(&c.node, Some("nobody-token")).await?;
    assert!(nobody.starts_with("HTTP/1.1 403"), "nobody: {nobody}");
    assert!(nobody.contains("user=nobody"), "nobody: {nobody}");
    let admin = node_get_pods_as(&c.node, Some("admin-token")).await?;
    assert!(admin.starts_with("HTTP/1.1 200"), "admin: {admin}");
    assert!(admin.contains("PodList"), "admin: {admin}");

    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    create_pod(
        &pods,
        "talk",
        &c.node.name,
        json!({"terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "busybox:1", "command": ["sh", "-c", "echo hello-auth; sleep 3600"]}]}),
    )
    .await?;
    wait_pod(
        &pods,
        "talk",
        "the pod to run",
        Duration::from_secs(60),
        |p| phase(p) == "Running",
    )
    .await
    .with_context(|| c.node.kubelet_log())?;
    let logs = integration_tests::output_text(&c.api.kubectl(&["logs", "talk"])?);
    assert!(logs.contains("hello-auth"), "kubectl logs: {logs}");
    let exec = integration_tests::output_text(&c.api.kubectl(&[
        "exec",
        "talk",
        "--",
        "cat",
        "/etc/hostname",
    ])?);
    assert!(exec.contains("talk"), "kubectl exec: {exec}");
    Ok(())
}

/// The waiting reason of a pod's first container.
fn waiting_reason(p: &Pod) -> Option<String> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .state
        .as_ref()?
        .waiting
        .as_ref()?
        .reason
        .clone()
}

/// Images that are not on the node: a failed pull reports ErrImagePull, then ImagePullBackOff
/// while the kubelet waits before pulling again; with `imagePullPolicy: Never` the container
/// waits with ErrImageNeverPull.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_images_back_off() -> Result<()> {
    let c = cluster().await?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    // Nothing listens on port 1: every pull fails at once.
    create_pod(
        &pods,
        "unpullable",
        &c.node.name,
        json!({"containers": [{"name": "main", "image": "127.0.0.1:1/missing:1"}]}),
    )
    .await?;
    create_pod(
        &pods,
        "never",
        &c.node.name,
        json!({"containers": [{"name": "main", "image": "missing:never", "imagePullPolicy": "Never"}]}),
    )
    .await?;
    for reason in ["ErrImagePull", "ImagePullBackOff"] {
        wait_pod(&pods, "unpullable", reason, Duration::from_secs(60), |p| {
            waiting_reason(p).as_deref() == Some(reason)
        })
        .await
        .with_context(|| c.node.kubelet_log())?;
    }
    let never = wait_pod(
        &pods,
        "never",
        "ErrImageNeverPull",
        Duration::from_secs(60),
        |p| waiting_reason(p).as_deref() == Some("ErrImageNeverPull"),
    )
    .await?;
    assert_eq!(phase(&never), "Pending");
    Ok(())
}
