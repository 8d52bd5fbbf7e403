//! kube-proxy end to end, in each of its three modes, on hosts built from network namespaces.
//!
//! Topology (every name is unique per test, everything is removed at the end):
//!
//! ```text
//!  host ns: test process, etcd, kube-apiserver on 127.0.0.1, and a TCP relay on 10.250.X.1
//!     | veth (10.250.X.1 <-> 10.250.X.2)
//!  node ns: kube-proxy (its rules live here), bridge br0 10.244.0.1/24, vc0 10.99.0.1/24
//!     | br0 (also fd00:244::1/64)            | vc0 (also fd00:99::1/64)
//!  b1 b2 b3 ns: busybox httpd on :8080,       client ns: 10.99.0.2 and fd00:99::2, the
//!  10.244.0.1N and fd00:244::1N,              off-node client
//!  each answering with its own name
//! ```
//!
//! The IPv6 addresses skip duplicate address detection so they are usable at once.
//!
//! kube-proxy runs inside the node namespace and reaches the apiserver through the relay, so the
//! packet filter state it writes never touches the host's own namespace.

use std::{
    collections::BTreeSet,
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use integration_tests::{binary, ApiServer, Etcd, Process};
use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};
use kube::{
    api::{Patch, PatchParams, PostParams},
    Api,
};
use serde_json::json;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The distribution's Python, for the UDP backends and client.
const PYTHON: &str = "/usr/bin/python3";

/// A UDP server on :5353 answering every datagram with its name (argv[1]).
const UDP_SERVER: &str = "import socket, sys\n\
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
s.bind(('0.0.0.0', 5353))\n\
while True:\n    _, peer = s.recvfrom(512)\n    s.sendto(sys.argv[1].encode(), peer)\n";

/// One UDP query (argv: ip, port, source port or 0); prints the answer.
const UDP_CLIENT: &str = "import socket, sys\n\
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
s.bind(('0.0.0.0', int(sys.argv[3])))\n\
s.settimeout(2)\n\
s.sendto(b'?', (sys.argv[1], int(sys.argv[2])))\n\
print(s.recv(512).decode())\n";

fn sh(args: &[&str]) -> Result<String> {
    let out = Command::new(args[0]).args(&args[1..]).output()?;
    if !out.status.success() {
        bail!("{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The namespaces and links of one test, deleted on drop.
struct Topology {
    prefix: String,
    subnet: u32,
}

impl Topology {
    fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    fn host_ip(&self) -> String {
        format!("10.250.{}.1", self.subnet)
    }

    fn build() -> Result<Topology> {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let prefix = format!("kp{}x{n}", pid % 100_000);
        let subnet = (pid * 7 + n * 13) % 250 + 1;
        let t = Topology { prefix, subnet };
        let node = t.ns("node");
        for ns in ["node", "client", "b1", "b2", "b3"] {
            sh(&["ip", "netns", "add", &t.ns(ns)])?;
            sh(&["ip", "-n", &t.ns(ns), "link", "set", "lo", "up"])?;
        }
        let host_if = format!("{}h", t.prefix);
        sh(&[
            "ip", "link", "add", &host_if, "type", "veth", "peer", "name", "uplink", "netns", &node,
        ])?;
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("{}/30", t.host_ip()),
            "dev",
            &host_if,
        ])?;
        sh(&["ip", "link", "set", &host_if, "up"])?;
        sh(&[
            "ip",
            "-n",
            &node,
            "addr",
            "add",
            &format!("10.250.{}.2/30", t.subnet),
            "dev",
            "uplink",
        ])?;
        sh(&["ip", "-n", &node, "link", "set", "uplink", "up"])?;
        sh(&[
            "ip",
            "-n",
            &node,
            "route",
            "add",
            "default",
            "via",
            &t.host_ip(),
        ])?;
        sh(&[
            "ip",
            "netns",
            "exec",
            &node,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ])?;
        sh(&[
            "ip",
            "netns",
            "exec",
            &node,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.forwarding=1",
        ])?;
        sh(&["ip", "-n", &node, "link", "add", "br0", "type", "bridge"])?;
        sh(&[
            "ip",
            "-n",
            &node,
            "addr",
            "add",
            "10.244.0.1/24",
            "dev",
            "br0",
        ])?;
        sh(&[
            "ip",
            "-n",
            &node,
            "addr",
            "add",
            "fd00:244::1/64",
            "dev",
            "br0",
            "nodad",
        ])?;
        sh(&["ip", "-n", &node, "link", "set", "br0", "up"])?;
        for i in 1..=3 {
            let b = t.ns(&format!("b{i}"));
            let port = format!("vb{i}");
            sh(&[
                "ip", "-n", &node, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &b,
            ])?;
            sh(&[
                "ip", "-n", &node, "link", "set", &port, "master", "br0", "up",
            ])?;
            // As CNI bridge plugins do (hairpinMode): a pod reaching itself through a service
            // comes back out of the port it went in by.
            sh(&[
                "ip",
                "-n",
                &node,
                "link",
                "set",
                &port,
                "type",
                "bridge_slave",
                "hairpin",
                "on",
            ])?;
            sh(&[
                "ip",
                "-n",
                &b,
                "addr",
                "add",
                &format!("10.244.0.1{i}/24"),
                "dev",
                "eth0",
            ])?;
            sh(&[
                "ip",
                "-n",
                &b,
                "addr",
                "add",
                &format!("fd00:244::1{i}/64"),
                "dev",
                "eth0",
                "nodad",
            ])?;
            sh(&["ip", "-n", &b, "link", "set", "eth0", "up"])?;
            sh(&[
                "ip",
                "-n",
                &b,
                "-6",
                "route",
                "add",
                "default",
                "via",
                "fd00:244::1",
            ])?;
            sh(&[
                "ip",
                "-n",
                &b,
                "route",
                "add",
                "default",
                "via",
                "10.244.0.1",
            ])?;
        }
        let client = t.ns("client");
        sh(&[
            "ip", "-n", &node, "link", "add", "vc0", "type", "veth", "peer", "name", "eth0",
            "netns", &client,
        ])?;
        sh(&[
            "ip",
            "-n",
            &node,
            "addr",
            "add",
            "10.99.0.1/24",
            "dev",
            "vc0",
        ])?;
        sh(&[
            "ip",
            "-n",
            &node,
            "addr",
            "add",
            "fd00:99::1/64",
            "dev",
            "vc0",
            "nodad",
        ])?;
        sh(&["ip", "-n", &node, "link", "set", "vc0", "up"])?;
        sh(&[
            "ip",
            "-n",
            &client,
            "addr",
            "add",
            "10.99.0.2/24",
            "dev",
            "eth0",
        ])?;
        sh(&[
            "ip",
            "-n",
            &client,
            "addr",
            "add",
            "fd00:99::2/64",
            "dev",
            "eth0",
            "nodad",
        ])?;
        sh(&["ip", "-n", &client, "link", "set", "eth0", "up"])?;
        sh(&[
            "ip",
            "-n",
            &client,
            "-6",
            "route",
            "add",
            "default",
            "via",
            "fd00:99::1",
        ])?;
        sh(&[
            "ip",
            "-n",
            &client,
            "route",
            "add",
            "default",
            "via",
            "10.99.0.1",
        ])?;
        Ok(t)
    }

    /// An HTTP GET from namespace `ns`: Ok(body) or Err(curl exit code).
    fn get(&self, ns: &str, url: &str) -> std::result::Result<String, i32> {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(ns),
                "curl",
                "-s",
                "--connect-timeout",
                "2",
                "-m",
                "4",
                url,
            ])
            .output()
            .map_err(|_| -1)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(out.status.code().unwrap_or(-1))
        }
    }

    /// One UDP query from the client namespace (source port 0: any).
    fn udp(&self, ip: &str, port: u16, source_port: u16) -> Result<String> {
        self.exec(
            "client",
            &[
                PYTHON,
                "-c",
                UDP_CLIENT,
                ip,
                &port.to_string(),
                &source_port.to_string(),
            ],
        )
        .map(|s| s.trim().to_string())
    }

    fn names(&self, url: &str, n: usize) -> Result<Vec<String>> {
        (0..n)
            .map(|_| {
                self.get("client", url)
                    .map_err(|c| anyhow::anyhow!("GET {url} failed: curl exit {c}"))
            })
            .collect()
    }

    fn exec(&self, ns: &str, args: &[&str]) -> Result<String> {
        let mut full = vec!["ip", "netns", "exec"];
        let name = self.ns(ns);
        full.push(&name);
        full.extend_from_slice(args);
        sh(&full)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in ["client", "b1", "b2", "b3", "node"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(ns)])
                .status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &format!("{}h", self.prefix)])
            .status();
    }
}

/// A TCP relay from the node-facing host address to the apiserver on loopback.
async fn relay(listen: String, to: u16) -> Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(format!("{listen}:0")).await?;
    let addr = listener.local_addr()?.to_string();
    let task = tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    Ok((addr, task))
}

/// Everything one scenario runs on. Field order is drop order: processes before namespaces.
struct Cluster {
    proxy: Option<Process>,
    _backends: Vec<Process>,
    relay: tokio::task::JoinHandle<()>,
    dir: tempfile::TempDir,
    api: ApiServer,
    _etcd: Etcd,
    topo: Topology,
    client: kube::Client,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.relay.abort();
    }
}

impl Cluster {
    /// Starts everything; without `packet_filter`, kube-proxy's PATH has no nft or iptables.
    async fn start(mode: Option<&str>, packet_filter: bool) -> Result<Cluster> {
        let topo = Topology::build()?;
        let etcd = Etcd::start()?;
        let api = ApiServer::start_with(
            &etcd,
            &["--service-cluster-ip-range=10.0.0.0/24,fd00:96::/112"],
        )?;
        let client = api.client().await?;
        let (relay_addr, relay) = relay(topo.host_ip(), api.port).await?;
        let dir = tempfile::tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://{relay_addr}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: admin-token\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n"
            ),
        )?;
        let mut backends = Vec::new();
        for i in 1..=3 {
            let root = dir.path().join(format!("b{i}"));
            std::fs::create_dir_all(&root)?;
            std::fs::write(root.join("index.html"), format!("b{i}\n"))?;
            let mut cmd = Command::new("ip");
            cmd.args([
                "netns",
                "exec",
                &topo.ns(&format!("b{i}")),
                "busybox",
                "httpd",
                "-f",
                "-p",
                "8080",
                "-h",
            ])
            .arg(&root);
            backends.push(Process::spawn(cmd, dir.path().join(format!("b{i}.log")))?);
            let mut cmd = Command::new("ip");
            cmd.args([
                "netns",
                "exec",
                &topo.ns(&format!("b{i}")),
                PYTHON,
                "-c",
                UDP_SERVER,
            ])
            .arg(format!("b{i}"));
            backends.push(Process::spawn(
                cmd,
                dir.path().join(format!("b{i}-udp.log")),
            )?);
        }
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &topo.ns("node")])
            .arg(binary("kube-proxy"))
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args([
                "--hostname-override=node-a",
                "--cluster-cidr=10.244.0.0/16,fd00:244::/64",
                "--nodeport-addresses=10.99.0.0/24,fd00:99::/64",
                "--healthz-bind-address=0.0.0.0:10256",
                "--metrics-bind-address=0.0.0.0:10249",
                "--iptables-min-sync-period=100ms",
                "-v=2",
            ]);
        if let Some(m) = mode {
            cmd.arg(format!("--proxy-mode={m}"));
        }
        if !packet_filter {
            let bin = dir.path().join("bin");
            std::fs::create_dir_all(&bin)?;
            std::os::unix::fs::symlink(sh(&["sh", "-c", "command -v ip"])?.trim(), bin.join("ip"))?;
            cmd.env("PATH", &bin);
        }
        let proxy = Process::spawn(cmd, dir.path().join("kube-proxy.log"))?;
        let cluster = Cluster {
            proxy: Some(proxy),
            _backends: backends,
            relay,
            dir,
            api,
            _etcd: etcd,
            topo,
            client,
        };
        cluster.wait("kube-proxy /healthz", Duration::from_secs(30), || {
            cluster
                .topo
                .get("client", "http://10.99.0.1:10256/healthz")
                .is_ok()
        })?;
        Ok(cluster)
    }

    fn log(&self) -> String {
        self.proxy
            .as_ref()
            .map(Process::log_text)
            .unwrap_or_default()
    }

    fn wait(&self, what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "{what} not reached within {timeout:?}; kube-proxy log:\n{}",
            self.log()
        )
    }

    /// Waits until `url` answers the client, then names the backend of each of `n` requests.
    fn names_once_answering(&self, what: &str, url: &str, n: usize) -> Result<Vec<String>> {
        self.wait(what, Duration::from_secs(20), || {
            self.topo.get("client", url).is_ok()
        })?;
        self.topo.names(url, n)
    }

    /// Creates a Service and returns (cluster IP, node port).
    async fn service(&self, name: &str, extra: serde_json::Value) -> Result<(String, Option<i32>)> {
        let mut spec = json!({
            "type": "NodePort",
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            spec[k] = v.clone();
        }
        let svc: Service = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": spec,
        }))?;
        let api: Api<Service> = Api::namespaced(self.client.clone(), "default");
        let created = api.create(&PostParams::default(), &svc).await?;
        let spec = created.spec.context("service without spec")?;
        let ip = spec.cluster_ip.context("no cluster IP allocated")?;
        let np = spec.ports.and_then(|p| p.first().and_then(|p| p.node_port));
        Ok((ip, np))
    }

    /// Creates a single-stack IPv6 NodePort Service through the API, asking the dual-stack
    /// apiserver for cluster IP `ip` from its IPv6 range, and returns its node port.
    async fn ipv6_service(&self, name: &str, ip: &str) -> Result<i32> {
        let (got, np) = self
            .service(name, json!({"ipFamilies": ["IPv6"], "clusterIP": ip}))
            .await?;
        assert_eq!(got, ip, "the requested IPv6 cluster IP");
        np.context("no node port allocated")
    }

    /// Writes the EndpointSlice of `service`: (backend index, ready, node name).
    async fn endpoints(&self, service: &str, eps: &[(u8, bool, &str)]) -> Result<()> {
        self.slice(service, eps, false).await
    }

    /// Writes the IPv4 (or, with `ipv6`, IPv6) EndpointSlice of `service`.
    async fn slice(&self, service: &str, eps: &[(u8, bool, &str)], ipv6: bool) -> Result<()> {
        let endpoints: Vec<serde_json::Value> = eps
            .iter()
            .map(|(i, ready, node)| {
                json!({
                    "addresses": [if ipv6 { format!("fd00:244::1{i}") } else { format!("10.244.0.1{i}") }],
                    "conditions": {"ready": ready, "serving": ready, "terminating": false},
                    "nodeName": node,
                })
            })
            .collect();
        let mut slice: EndpointSlice = serde_json::from_value(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{service}-1"), "namespace": "default",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": if ipv6 { "IPv6" } else { "IPv4" },
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
                      {"name": "dns", "port": 5353, "protocol": "UDP"}],
            "endpoints": endpoints,
        }))?;
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), "default");
        let name = format!("{service}-1");
        match api.get_opt(&name).await? {
            Some(existing) => {
                slice.metadata.resource_version = existing.metadata.resource_version;
                api.replace(&name, &PostParams::default(), &slice).await?;
            }
            None => {
                api.create(&PostParams::default(), &slice).await?;
            }
        }
        Ok(())
    }
}

fn distinct(names: &[String]) -> BTreeSet<&str> {
    names.iter().map(String::as_str).collect()
}

/// The whole walk-through for one mode.
async fn scenario(mode: Option<&str>, expect_mode: &str) -> Result<()> {
    let c = Cluster::start(mode, true).await?;
    assert!(
        c.log().contains("using proxy mode") && c.log().contains(expect_mode),
        "no mode log line for {expect_mode}:\n{}",
        c.log()
    );

    // ClusterIP and NodePort reach every ready backend, spread across them.
    let (ip, np) = c
        .service(
            "web",
            json!({"ports": [
                {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                {"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"},
            ]}),
        )
        .await?;
    let np = np.context("no node port allocated")?;
    c.endpoints(
        "web",
        &[
            (1, true, "node-a"),
            (2, true, "node-a"),
            (3, true, "node-a"),
        ],
    )
    .await?;
    let cluster_url = format!("http://{ip}/");
    let node_url = format!("http://10.99.0.1:{np}/");
    let names = c.names_once_answering("the ClusterIP answering", &cluster_url, 30)?;
    let all: BTreeSet<&str> = ["b1", "b2", "b3"].into_iter().collect();
    assert_eq!(distinct(&names), all, "ClusterIP spread: {names:?}");
    let names = c.topo.names(&node_url, 30)?;
    assert_eq!(distinct(&names), all, "NodePort spread: {names:?}");
    let from_node = c
        .topo
        .exec("node", &["curl", "-s", "-m", "4", &cluster_url])?;
    assert!(
        from_node.starts_with('b'),
        "ClusterIP from the node itself: {from_node:?}"
    );

    // A backend reaches its own service, including (about a third of the time) itself.
    let mut from_b1 = Vec::new();
    for _ in 0..20 {
        from_b1.push(c.topo.get("b1", &cluster_url));
    }
    assert!(
        from_b1
            .iter()
            .all(|r| r.as_ref().is_ok_and(|a| a.starts_with('b'))),
        "requests from b1 through the service failed: {from_b1:?}; log:\n{}",
        c.log()
    );

    // UDP is spread too, and one flow (fixed source port) stays on one endpoint.
    let answers: Vec<String> = (0..30)
        .map(|_| c.topo.udp(&ip, 53, 0))
        .collect::<Result<_>>()?;
    assert_eq!(distinct(&answers), all, "UDP spread: {answers:?}");
    let pinned = c.topo.udp(&ip, 53, 40000)?;
    for _ in 0..3 {
        assert_eq!(
            c.topo.udp(&ip, 53, 40000)?,
            pinned,
            "one UDP flow changed endpoints"
        );
    }

    // The backend that flow uses is marked not ready: within one sync no new TCP connection
    // reaches it, and the UDP flow moves (its conntrack entry was flushed).
    let gone: u8 = pinned.trim_start_matches('b').parse()?;
    let eps: Vec<(u8, bool, &str)> = (1..=3).map(|i| (i, i != gone, "node-a")).collect();
    c.endpoints("web", &eps).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let names = c.topo.names(&cluster_url, 30)?;
    let remaining: BTreeSet<&str> = all.iter().copied().filter(|n| *n != pinned).collect();
    assert_eq!(
        distinct(&names),
        remaining,
        "after {pinned} went unready: {names:?}"
    );
    for _ in 0..3 {
        let moved = c.topo.udp(&ip, 53, 40000)?;
        assert_ne!(
            moved,
            pinned,
            "the UDP flow still reaches the unready endpoint; log:\n{}",
            c.log()
        );
    }

    // ClientIP affinity pins a client to one backend.
    let (sticky_ip, _) = c
        .service(
            "sticky",
            json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 300}}}),
        )
        .await?;
    c.endpoints(
        "sticky",
        &[
            (1, true, "node-a"),
            (2, true, "node-a"),
            (3, true, "node-a"),
        ],
    )
    .await?;
    let sticky_url = format!("http://{sticky_ip}/");
    let names = c.names_once_answering("the sticky service answering", &sticky_url, 15)?;
    assert_eq!(distinct(&names).len(), 1, "affinity did not pin: {names:?}");

    // A service with no endpoints is refused at once, not black-holed.
    let (empty_ip, empty_np) = c.service("empty", json!({})).await?;
    let empty_np = empty_np.context("no node port")?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for url in [
        format!("http://{empty_ip}/"),
        format!("http://10.99.0.1:{empty_np}/"),
    ] {
        let start = Instant::now();
        let result = c.topo.get("client", &url);
        assert_eq!(result, Err(7), "{url} should be refused; log:\n{}", c.log());
        assert!(
            start.elapsed() < Duration::from_millis(1500),
            "{url} was not refused at once"
        );
    }

    // externalTrafficPolicy Local keeps node-port traffic on this node's endpoints, and the
    // health-check node port reports the local endpoint.
    let (_, local_np) = c
        .service(
            "local",
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 32555}),
        )
        .await?;
    let local_np = local_np.context("no node port")?;
    c.endpoints("local", &[(1, true, "node-a"), (3, true, "node-b")])
        .await?;
    let local_url = format!("http://10.99.0.1:{local_np}/");
    let names = c.names_once_answering("the Local service answering", &local_url, 20)?;
    assert_eq!(
        distinct(&names),
        ["b1"].into_iter().collect(),
        "Local policy left the node: {names:?}"
    );
    let hc = c
        .topo
        .get("client", "http://10.99.0.1:32555/")
        .map_err(|e| anyhow::anyhow!("health check node port: curl {e}"))?;
    assert!(
        hc.contains("\"localEndpoints\":1"),
        "health check body: {hc}"
    );

    // internalTrafficPolicy Local keeps cluster-IP traffic on this node's endpoints.
    let (itp_ip, _) = c
        .service(
            "itp",
            json!({"type": "ClusterIP", "internalTrafficPolicy": "Local"}),
        )
        .await?;
    c.endpoints("itp", &[(2, true, "node-a"), (3, true, "node-b")])
        .await?;
    let itp_url = format!("http://{itp_ip}/");
    let names = c.names_once_answering("the internal-Local service answering", &itp_url, 20)?;
    assert_eq!(
        distinct(&names),
        ["b2"].into_iter().collect(),
        "internal Local policy: {names:?}"
    );

    // External IPs are served like the cluster IP.
    c.service(
        "ext",
        json!({"type": "ClusterIP", "externalIPs": ["10.98.0.100"]}),
    )
    .await?;
    c.endpoints("ext", &[(3, true, "node-a")]).await?;
    c.wait("the external IP answering", Duration::from_secs(20), || {
        c.topo
            .get("client", "http://10.98.0.100/")
            .is_ok_and(|b| b == "b3")
    })?;

    // A LoadBalancer's ingress IP (written to its status, as a cloud controller would) is
    // served like an external IP.
    let (lb_cluster_ip, _) = c.service("lb", json!({"type": "LoadBalancer"})).await?;
    let services: Api<Service> = Api::namespaced(c.client.clone(), "default");
    let ingress = json!({"status": {"loadBalancer": {"ingress": [{"ip": "10.98.0.101"}]}}});
    services
        .patch_status("lb", &PatchParams::default(), &Patch::Merge(&ingress))
        .await?;
    c.endpoints("lb", &[(2, true, "node-a")]).await?;
    c.wait(
        "the load-balancer IP answering",
        Duration::from_secs(20),
        || {
            c.topo
                .get("client", "http://10.98.0.101/")
                .is_ok_and(|b| b == "b2")
        },
    )?;

    // loadBalancerSourceRanges: load-balancer traffic from outside the ranges no longer reaches
    // the service (the packet filters drop it, so it times out; userspace closes it), while
    // the service's cluster IP still answers.
    let ranges = json!({"spec": {"loadBalancerSourceRanges": ["192.0.2.0/24"]}});
    services
        .patch("lb", &PatchParams::default(), &Patch::Merge(&ranges))
        .await?;
    c.wait(
        "the load-balancer IP refusing other sources",
        Duration::from_secs(30),
        || c.topo.get("client", "http://10.98.0.101/").is_err(),
    )?;
    let outside = c.topo.get("client", "http://10.98.0.101/");
    if expect_mode == "userspace" {
        assert!(outside.is_err(), "{outside:?}");
    } else {
        assert_eq!(
            outside,
            Err(28),
            "outside the source ranges should time out"
        );
    }
    assert_eq!(
        c.topo.get("client", &format!("http://{lb_cluster_ip}/")),
        Ok("b2".to_string())
    );

    // An IPv6 ClusterIP service reaches its IPv6 backends, and each family's rules carry only
    // that family's services.
    let np6 = c.ipv6_service("web6", "fd00:96::10").await?;
    c.slice(
        "web6",
        &[
            (1, true, "node-a"),
            (2, true, "node-a"),
            (3, true, "node-a"),
        ],
        true,
    )
    .await?;
    let url6 = "http://[fd00:96::10]/";
    let names = c.names_once_answering("the IPv6 ClusterIP answering", url6, 30)?;
    assert_eq!(distinct(&names), all, "IPv6 ClusterIP spread: {names:?}");
    let names = c.topo.names(&format!("http://[fd00:99::1]:{np6}/"), 30)?;
    assert_eq!(distinct(&names), all, "IPv6 NodePort spread: {names:?}");
    let rules = |argv: &[&str]| c.topo.exec("node", argv);
    let (v4_rules, v6_rules) = match expect_mode {
        "nftables" => (
            rules(&["nft", "list", "table", "ip", "kube-proxy"])?,
            rules(&["nft", "list", "table", "ip6", "kube-proxy"])?,
        ),
        "iptables" => (rules(&["iptables-save"])?, rules(&["ip6tables-save"])?),
        _ => (
            String::new(),
            rules(&["ip", "-o", "addr", "show", "dev", "kube-proxy0"])?,
        ),
    };
    assert!(v6_rules.contains("fd00:96::10"), "IPv6 state:\n{v6_rules}");
    if expect_mode != "userspace" {
        assert!(v6_rules.contains("fd00:244::11"), "ip6 rules:\n{v6_rules}");
        assert!(
            !v6_rules.contains(&ip),
            "IPv4 service in ip6 rules:\n{v6_rules}"
        );
        assert!(
            !v4_rules.contains("fd00:"),
            "IPv6 service in ip rules:\n{v4_rules}"
        );
    }

    // Health and metrics.
    let healthz = c
        .topo
        .get("client", "http://10.99.0.1:10256/healthz")
        .map_err(|e| anyhow::anyhow!("healthz: {e}"))?;
    assert!(healthz.contains("lastUpdated"), "{healthz}");
    let metrics = c.topo.exec(
        "node",
        &["curl", "-s", "-m", "4", "http://127.0.0.1:10249/metrics"],
    )?;
    assert!(
        metrics.contains("kubeproxy_sync_proxy_rules_duration_seconds_count"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kubeproxy_sync_proxy_rules_last_timestamp_seconds"),
        "{metrics}"
    );

    // --cleanup leaves nothing behind (of what this mode did install).
    let installed = match expect_mode {
        "nftables" => c
            .topo
            .exec("node", &["nft", "list", "table", "ip", "kube-proxy"])?
            .contains("numgen random"),
        "iptables" => c
            .topo
            .exec("node", &["iptables-save", "-t", "nat"])?
            .contains(":KUBE-SVC-"),
        _ => c
            .topo
            .exec("node", &["ip", "-o", "addr", "show"])?
            .contains("kube-proxy"),
    };
    assert!(
        installed,
        "{expect_mode} mode installed nothing recognisable"
    );
    let mut c = c;
    if let Some(mut p) = c.proxy.take() {
        p.terminate();
    }
    c.topo.exec(
        "node",
        &[&binary("kube-proxy").display().to_string(), "--cleanup"],
    )?;
    let ruleset = c.topo.exec("node", &["nft", "list", "ruleset"])?;
    assert!(
        !ruleset.contains("kube-proxy"),
        "nftables left behind:\n{ruleset}"
    );
    for save in [
        "iptables-nft-save",
        "iptables-legacy-save",
        "ip6tables-nft-save",
        "ip6tables-legacy-save",
    ] {
        let rules = c.topo.exec("node", &[save])?;
        assert!(!rules.contains("KUBE-"), "{save} left behind:\n{rules}");
    }
    let addrs = c.topo.exec("node", &["ip", "-o", "addr", "show"])?;
    assert!(
        !addrs.contains("kube-proxy"),
        "interface addresses left behind:\n{addrs}"
    );
    assert!(
        c.topo.get("client", &cluster_url).is_err(),
        "the ClusterIP still answers after --cleanup"
    );
    assert!(
        c.topo.get("client", url6).is_err(),
        "the IPv6 ClusterIP still answers after --cleanup"
    );
    let _ = &c.dir;
    let _ = &c.api;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nftables_mode_is_detected_and_proxies_services() -> Result<()> {
    scenario(None, "nftables").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iptables_mode_proxies_services() -> Result<()> {
    scenario(Some("iptables"), "iptables").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userspace_mode_proxies_services() -> Result<()> {
    scenario(Some("userspace"), "userspace").await
}

/// Without nft and iptables, kube-proxy falls back to userspace, says so on the Node, and still
/// serves a ClusterIP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_to_userspace_without_a_packet_filter() -> Result<()> {
    let c = Cluster::start(None, false).await?;
    let log = c.log();
    assert!(
        log.contains("falling back") && log.contains("userspace"),
        "{log}"
    );
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(c.client.clone(), "default");
    let list = events.list(&Default::default()).await?;
    let fallback = list
        .items
        .iter()
        .find(|e| e.reason.as_deref() == Some("ProxyModeFallback"))
        .context("no ProxyModeFallback event")?;
    assert_eq!(fallback.involved_object.kind.as_deref(), Some("Node"));
    assert_eq!(fallback.involved_object.name.as_deref(), Some("node-a"));
    assert_eq!(fallback.type_.as_deref(), Some("Warning"));

    let (ip, _) = c.service("web", json!({})).await?;
    c.endpoints("web", &[(1, true, "node-a"), (2, true, "node-a")])
        .await?;
    let url = format!("http://{ip}/");
    let names = c.names_once_answering("the ClusterIP answering", &url, 10)?;
    assert_eq!(
        distinct(&names),
        ["b1", "b2"].into_iter().collect(),
        "{names:?}"
    );
    Ok(())
}
