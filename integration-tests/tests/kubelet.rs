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
use integration_tests::{binary, bin_dir, free_port, ApiServer, Etcd, Process};
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
            let status = Command::new("sh").arg(&script).arg(&staged).status().expect("running images/build.sh");
            assert!(status.success(), "images/build.sh failed");
            let _ = std::fs::rename(&staged, &dir);
            let _ = std::fs::remove_dir_all(&staged);
        }
        dir
    })
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
                bail!("importing {image}: {}", String::from_utf8_lossy(&out.stderr));
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
        let d = self.dir.path();
        let config = format!(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nport: {}\npodLogsDir: {}\nstaticPodPath: {}\nfileCheckFrequency: 1s\nclusterDNS: [10.96.0.10]\nclusterDomain: cluster.local\nnodeStatusUpdateFrequency: 2s\n",
            self.port,
            self.logs().display(),
            self.manifests().display()
        );
        std::fs::write(d.join("kubelet.yaml"), config)?;
        let mut cmd = Command::new(binary("kubelet"));
        cmd.arg("--config")
            .arg(d.join("kubelet.yaml"))
            .arg(format!("--container-runtime-endpoint=unix://{}", self.socket.display()))
            .arg(format!("--hostname-override={}", self.name))
            .arg("--root-dir")
            .arg(d.join("kubelet"))
            .arg("--v=2");
        if let Some(k) = kubeconfig {
            cmd.arg("--kubeconfig").arg(k);
        }
        let log = d.join(format!("kubelet-{}.log", Instant::now().elapsed().as_nanos() + self.port as u128));
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
        kubelet::cri::Runtime::connect(&format!("unix://{}", self.socket.display())).expect("CRI client")
    }

    /// Running containers of the pod with `uid`.
    async fn running_containers(&self, uid: &str) -> Result<Vec<String>> {
        let labels = HashMap::from([("io.kubernetes.pod.uid".to_string(), uid.to_string())]);
        Ok(self
            .runtime()
            .list_containers(labels)
            .await?
            .into_iter()
            .filter(|c| c.state == cri_proto_state_running())
            .map(|c| c.id)
            .collect())
    }
}

fn cri_proto_state_running() -> i32 {
    1
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.stop_kubelet();
        // Tear the pods down through CRI so CNI releases their network, then stop containerd.
        let endpoint = format!("unix://{}", self.socket.display());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                let Ok(runtime) = kubelet::cri::Runtime::connect(&endpoint) else { return };
                for s in runtime.list_pod_sandboxes(HashMap::new()).await.unwrap_or_default() {
                    let _ = runtime.stop_pod_sandbox(&s.id).await;
                    let _ = runtime.remove_pod_sandbox(&s.id).await;
                }
            });
        })
        .join();
        if let Some(mut c) = self.containerd.take() {
            c.terminate();
        }
        let prefix = self.dir.path().display().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = mounts.lines().filter_map(|l| l.split(' ').nth(4)).filter(|p| p.starts_with(&prefix)).collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").arg("-l").arg(p).status();
        }
        let _ = Command::new("ip").args(["link", "del", &self.bridge]).status();
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

fn phase(p: &Pod) -> &str {
    p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

fn condition(p: &Pod, kind: &str) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == kind && c.status == "True"))
}

struct Cluster {
    _etcd: Etcd,
    api: ApiServer,
    node: TestNode,
    client: kube::Client,
}

async fn cluster() -> Result<Cluster> {
    let etcd = Etcd::start()?;
    let api = ApiServer::start(&etcd)?;
    let client = api.client().await?;
    let mut node = TestNode::start()?;
    node.start_kubelet(Some(&api.kubeconfig))?;
    let nodes: Api<Node> = Api::all(client.clone());
    let name = node.name.clone();
    wait("the node to register Ready", Duration::from_secs(30), || {
        let nodes = nodes.clone();
        let name = name.clone();
        async move {
            let n = nodes.get_opt(&name).await.ok().flatten()?;
            let ready = n.status.as_ref()?.conditions.as_ref()?.iter().any(|c| c.type_ == "Ready" && c.status == "True");
            ready.then_some(())
        }
    })
    .await
    .with_context(|| node.kubelet_log())?;
    Ok(Cluster { _etcd: etcd, api, node, client })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_registers_and_pods_run_and_stop() -> Result<()> {
    let c = cluster().await?;
    let node: Node = Api::<Node>::all(c.client.clone()).get(&c.node.name).await?;
    let labels = node.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("kubernetes.io/hostname"), Some(&c.node.name));
    assert_eq!(labels.get("kubernetes.io/os").map(String::as_str), Some("linux"));
    let status = node.status.clone().unwrap_or_default();
    let capacity = status.capacity.clone().unwrap_or_default();
    for r in ["cpu", "memory", "pods", "ephemeral-storage"] {
        assert!(capacity.contains_key(r), "capacity lacks {r}");
        assert!(status.allocatable.as_ref().is_some_and(|a| a.contains_key(r)), "allocatable lacks {r}");
    }
    let info = status.node_info.clone().unwrap_or_default();
    assert!(info.container_runtime_version.starts_with("containerd://"), "{info:?}");
    assert_eq!(info.kubelet_version, "v1.33.0");
    assert!(status.addresses.as_ref().is_some_and(|a| a.iter().any(|a| a.type_ == "InternalIP")));
    let conditions: Vec<String> = status.conditions.unwrap_or_default().into_iter().map(|c| c.type_).collect();
    for kind in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
        assert!(conditions.contains(&kind.to_string()), "missing condition {kind}");
    }
    let lease: Lease = Api::namespaced(c.client.clone(), "kube-node-lease").get(&c.node.name).await?;
    assert_eq!(lease.spec.and_then(|s| s.holder_identity), Some(c.node.name.clone()));
    wait("node images", Duration::from_secs(15), || {
        let nodes: Api<Node> = Api::all(c.client.clone());
        let name = c.node.name.clone();
        async move {
            let n = nodes.get(&name).await.ok()?;
            let images = n.status?.images?;
            images.iter().any(|i| i.names.iter().flatten().any(|n| n.contains("busybox:1"))).then_some(())
        }
    })
    .await?;

    // A long-running pod becomes Running and Ready with an IP, its env resolved.
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let spec = json!({
        "terminationGracePeriodSeconds": 5,
        "containers": [{
            "name": "main", "image": "busybox:1",
            "command": ["sh", "-c", "echo pod=$POD_NAME ip=$POD_IP; trap 'exit 0' TERM; while true; do sleep 1; done"],
            "env": [
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
            ]
        }]
    });
    pods.create(&PostParams::default(), &pod("sleeper", &c.node.name, spec)).await?;
    let running = wait("the pod to be Running and Ready", Duration::from_secs(60), || {
        let pods = pods.clone();
        async move {
            let p = get_pod(&pods, "sleeper").await?;
            (phase(&p) == "Running" && condition(&p, "Ready") && p.status.as_ref()?.pod_ip.is_some()).then_some(p)
        }
    })
    .await
    .with_context(|| c.node.kubelet_log())?;
    let status = running.status.clone().unwrap_or_default();
    let ip = status.pod_ip.clone().unwrap_or_default();
    assert!(ip.starts_with("10."), "pod IP {ip}");
    assert!(status.host_ip.is_some());
    assert!(status.start_time.is_some());
    let cs = &status.container_statuses.unwrap_or_default()[0];
    assert!(cs.ready && cs.container_id.as_deref().is_some_and(|id| id.starts_with("containerd://")));
    assert_eq!(cs.restart_count, 0);
    for kind in ["PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready"] {
        assert!(condition(&running, kind), "condition {kind} not True");
    }
    // The container's output is in upstream's log layout.
    let uid = running.metadata.uid.clone().unwrap_or_default();
    let log = c.node.logs().join(format!("default_sleeper_{uid}/main/0.log"));
    let text = wait("the container log", Duration::from_secs(10), || {
        let log = log.clone();
        async move { std::fs::read_to_string(&log).ok().filter(|t| t.contains("pod=sleeper")) }
    })
    .await?;
    assert!(text.contains(&format!("ip={ip}")), "{text}");
    assert!(text.contains(" stdout F pod=sleeper"), "CRI log format: {text}");

    // Deleting the pod stops its container within the grace period and removes the object.
    let deleted_at = Instant::now();
    pods.delete("sleeper", &DeleteParams::default()).await?;
    wait("the pod object to go", Duration::from_secs(20), || {
        let pods = pods.clone();
        async move { get_pod(&pods, "sleeper").await.is_none().then_some(()) }
    })
    .await
    .with_context(|| c.node.kubelet_log())?;
    assert!(deleted_at.elapsed() < Duration::from_secs(10), "took {:?}", deleted_at.elapsed());
    assert!(c.node.running_containers(&uid).await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_policies_and_exit_codes() -> Result<()> {
    let c = cluster().await?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let job = json!({"restartPolicy": "Never", "containers": [{"name": "job", "image": "busybox:1", "command": ["sh", "-c", "echo done"]}]});
    pods.create(&PostParams::default(), &pod("job", &c.node.name, job)).await?;
    let crash = json!({"restartPolicy": "Always", "containers": [{"name": "crash", "image": "busybox:1", "command": ["sh", "-c", "exit 3"]}]});
    pods.create(&PostParams::default(), &pod("crash", &c.node.name, crash)).await?;
    let failing = json!({"restartPolicy": "Never", "initContainers": [{"name": "init", "image": "busybox:1", "command": ["true"]}],
        "containers": [{"name": "fail", "image": "busybox:1", "command": ["sh", "-c", "exit 2"]}]});
    pods.create(&PostParams::default(), &pod("fail", &c.node.name, failing)).await?;

    let done = wait("the job pod to succeed", Duration::from_secs(60), || {
        let pods = pods.clone();
        async move { get_pod(&pods, "job").await.filter(|p| phase(p) == "Succeeded") }
    })
    .await
    .with_context(|| c.node.kubelet_log())?;
    let term = done.status.unwrap_or_default().container_statuses.unwrap_or_default()[0]
        .state
        .clone()
        .and_then(|s| s.terminated)
        .context("terminated state")?;
    assert_eq!((term.exit_code, term.reason.as_deref()), (0, Some("Completed")));

    let failed = wait("the failing pod to fail", Duration::from_secs(60), || {
        let pods = pods.clone();
        async move { get_pod(&pods, "fail").await.filter(|p| phase(p) == "Failed") }
    })
    .await?;
    let status = failed.status.unwrap_or_default();
    let term = status.container_statuses.unwrap_or_default()[0].state.clone().and_then(|s| s.terminated).context("terminated")?;
    assert_eq!((term.exit_code, term.reason.as_deref()), (2, Some("Error")));
    let init = status.init_container_statuses.unwrap_or_default();
    assert_eq!(init[0].state.clone().and_then(|s| s.terminated).map(|t| t.exit_code), Some(0));

    let crashing = wait("CrashLoopBackOff with restarts", Duration::from_secs(60), || {
        let pods = pods.clone();
        async move {
            let p = get_pod(&pods, "crash").await?;
            let cs = p.status.clone()?.container_statuses?.first()?.clone();
            let waiting = cs.state.clone()?.waiting?.reason?;
            (waiting == "CrashLoopBackOff" && cs.restart_count >= 2).then_some(cs)
        }
    })
    .await
    .with_context(|| c.node.kubelet_log())?;
    let last = crashing.last_state.and_then(|s| s.terminated).context("lastState")?;
    assert_eq!((last.exit_code, last.reason.as_deref()), (3, Some("Error")));
    assert_eq!(phase(&get_pod(&pods, "crash").await.context("pod")?), "Running");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_ports_and_config_volumes() -> Result<()> {
    let c = cluster().await?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {"greeting": "hello"}}))?;
    cms.create(&PostParams::default(), &cm).await?;
    let spec = json!({
        "containers": [{
            "name": "web", "image": "busybox:1",
            "command": ["sh", "-c", "mkdir -p /www && echo \"$GREETING from $(hostname)\" > /www/index.html && httpd -f -p 8080 -h /www"],
            "env": [{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}}],
            "ports": [{"containerPort": 8080, "name": "http"}],
            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
            "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}]
        }, {
            "name": "flaky", "image": "busybox:1",
            "command": ["sh", "-c", "touch /tmp/alive; sleep 3600"],
            "livenessProbe": {"exec": {"command": ["sh", "-c", "test -e /tmp/alive && rm /tmp/alive"]}, "periodSeconds": 1, "failureThreshold": 2}
        }],
        "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}]
    });
    pods.create(&PostParams::default(), &pod("web", &c.node.name, spec)).await?;
    let running = wait("the web container to be ready", Duration::from_secs(60), || {
        let pods = pods.clone();
        async move {
            let p = get_pod(&pods, "web").await?;
            let ready = p.status.as_ref()?.container_statuses.as_ref()?.iter().any(|c| c.name == "web" && c.ready);
            ready.then_some(p)
        }
    })
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
    wait("the liveness probe to restart flaky", Duration::from_secs(60), || {
        let pods = pods.clone();
        async move {
            let p = get_pod(&pods, "web").await?;
            let cs = p.status?.container_statuses?;
            cs.iter().any(|c| c.name == "flaky" && c.restart_count >= 1).then_some(())
        }
    })
    .await
    .with_context(|| c.node.kubelet_log())?;

    // A configMap update reaches the running container's volume.
    let runtime = c.node.runtime();
    let uid = get_pod(&pods, "web").await.and_then(|p| p.metadata.uid).context("uid")?;
    let web = runtime
        .list_containers(HashMap::from([
            ("io.kubernetes.pod.uid".to_string(), uid.clone()),
            ("io.kubernetes.container.name".to_string(), "web".to_string()),
        ]))
        .await?
        .into_iter()
        .find(|c| c.state == cri_proto_state_running())
        .context("web container")?;
    let read = |runtime: kubelet::cri::Runtime, id: String| async move {
        runtime.exec_sync(&id, vec!["cat".into(), "/etc/cfg/greeting".into()], 5).await.ok().map(|r| String::from_utf8_lossy(&r.stdout).into_owned())
    };
    assert_eq!(read(runtime.clone(), web.id.clone()).await.as_deref(), Some("hello"));
    cms.patch("cfg", &PatchParams::default(), &Patch::Merge(json!({"data": {"greeting": "bonjour"}}))).await?;
    wait("the updated configMap in the volume", Duration::from_secs(40), || {
        let (runtime, id) = (runtime.clone(), web.id.clone());
        async move { read(runtime, id).await.filter(|t| t == "bonjour").map(|_| ()) }
    })
    .await?;
    // Cluster DNS settings.
    let resolv = runtime.exec_sync(&web.id, vec!["cat".into(), "/etc/resolv.conf".into()], 5).await?;
    let resolv = String::from_utf8_lossy(&resolv.stdout).into_owned();
    assert!(resolv.contains("nameserver 10.96.0.10"), "{resolv}");
    assert!(resolv.contains("search default.svc.cluster.local svc.cluster.local cluster.local"), "{resolv}");
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
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: static-web\n  namespace: kube-system\nspec:\n  containers:\n  - name: web\n    image: busybox:1\n    command: [sleep, '3600']\n",
    )?;
    node.start_kubelet(Some(&api.kubeconfig))?;
    // With the apiserver down the static pod still runs.
    let runtime = node.runtime();
    wait("the static pod's container", Duration::from_secs(60), || {
        let runtime = runtime.clone();
        async move {
            let cs = runtime.list_containers(HashMap::from([("io.kubernetes.container.name".to_string(), "web".to_string())])).await.ok()?;
            cs.iter().any(|c| c.state == cri_proto_state_running()).then_some(())
        }
    })
    .await
    .with_context(|| node.kubelet_log())?;
    api.restart()?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let name = format!("static-web-{}", node.name);
    let mirror = wait("the mirror pod", Duration::from_secs(60), || {
        let pods = pods.clone();
        let name = name.clone();
        async move { get_pod(&pods, &name).await.filter(|p| phase(p) == "Running") }
    })
    .await
    .with_context(|| node.kubelet_log())?;
    assert!(mirror.metadata.annotations.unwrap_or_default().contains_key("kubernetes.io/config.mirror"));
    // Removing the manifest removes the pod and its mirror.
    std::fs::remove_file(node.manifests().join("static-web.yaml"))?;
    wait("the mirror pod to go", Duration::from_secs(40), || {
        let pods = pods.clone();
        let name = name.clone();
        async move { get_pod(&pods, &name).await.is_none().then_some(()) }
    })
    .await?;
    wait("the static container to stop", Duration::from_secs(40), || {
        let runtime = runtime.clone();
        async move {
            let cs = runtime.list_containers(HashMap::from([("io.kubernetes.container.name".to_string(), "web".to_string())])).await.ok()?;
            (!cs.iter().any(|c| c.state == cri_proto_state_running())).then_some(())
        }
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_kubelet_adopts_running_containers() -> Result<()> {
    let mut c = cluster().await?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let spec = json!({"containers": [{"name": "main", "image": "busybox:1", "command": ["sleep", "3600"]}]});
    pods.create(&PostParams::default(), &pod("keep", &c.node.name, spec)).await?;
    let before = wait("the pod to run", Duration::from_secs(60), || {
        let pods = pods.clone();
        async move { get_pod(&pods, "keep").await.filter(|p| condition(p, "Ready")) }
    })
    .await
    .with_context(|| c.node.kubelet_log())?;
    let id = |p: &Pod| p.status.clone().and_then(|s| s.container_statuses).and_then(|cs| cs[0].container_id.clone());
    let first = id(&before);
    c.node.stop_kubelet();
    c.node.start_kubelet(Some(&c.api.kubeconfig))?;
    // Give the new kubelet time to sync the pod, then check it kept the container.
    let lease_api: Api<Lease> = Api::namespaced(c.client.clone(), "kube-node-lease");
    let renewed = lease_api.get(&c.node.name).await?.spec.and_then(|s| s.renew_time);
    wait("the restarted kubelet to renew its lease", Duration::from_secs(30), || {
        let lease_api = lease_api.clone();
        let name = c.node.name.clone();
        let renewed = renewed.clone();
        async move { (lease_api.get(&name).await.ok()?.spec?.renew_time != renewed).then_some(()) }
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = get_pod(&pods, "keep").await.context("pod")?;
    assert_eq!(id(&after), first);
    let cs = &after.status.clone().unwrap_or_default().container_statuses.unwrap_or_default()[0];
    assert_eq!(cs.restart_count, 0);
    assert!(cs.ready);
    Ok(())
}
