//! kube-scheduler against the real apiserver and etcd: each filter and score plugin changes the
//! chosen node as upstream's would, FailedScheduling shows in `kubectl describe`, the explain
//! endpoint names the rejecting plugin per node, preemption evicts the right victim, and two
//! replicas never bind a pod twice and fail over.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use integration_tests::{binary, free_port, output_text, ApiServer, Etcd, Process};
use k8s_openapi::api::{
    coordination::v1::Lease,
    core::v1::{Event, Namespace, Node, Pod},
};
use kube::{
    api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams},
    Client,
};
use serde_json::{json, Value};

struct Cluster {
    api: ApiServer,
    client: Client,
    _etcd: Etcd,
}

async fn cluster() -> Result<Cluster> {
    let etcd = Etcd::start()?;
    let api = ApiServer::start(&etcd)?;
    let client = api.client().await?;
    Ok(Cluster {
        api,
        client,
        _etcd: etcd,
    })
}

struct Scheduler {
    process: Process,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Scheduler {
    fn start(api: &ApiServer, config: Option<&str>, extra: &[&str]) -> Result<Scheduler> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let mut cmd = Command::new(binary("kube-scheduler"));
        cmd.arg(format!("--kubeconfig={}", api.kubeconfig.display()))
            .arg(format!("--secure-port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--cert-dir={}", dir.path().join("certs").display()))
            .arg("-v=2")
            .args(extra);
        if let Some(text) = config {
            let path = dir.path().join("config.yaml");
            std::fs::write(&path, text)?;
            cmd.arg(format!("--config={}", path.display()));
        }
        let process = Process::spawn(cmd, dir.path().join("scheduler.log"))?;
        let s = Scheduler {
            process,
            port,
            _dir: dir,
        };
        let start = Instant::now();
        while s.get("/healthz").map(|(code, _)| code).ok() != Some(200) {
            if start.elapsed() > Duration::from_secs(20) {
                bail!(
                    "scheduler did not become healthy:\n{}",
                    s.process.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(s)
    }

    /// GETs a path on the secure port: (status, body).
    fn get(&self, path: &str) -> Result<(u16, String)> {
        let out = Command::new("curl")
            .args(["-sk", "-w", "\n%{http_code}"])
            .arg(format!("https://127.0.0.1:{}{path}", self.port))
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        Ok((code.trim().parse().unwrap_or(0), body.to_string()))
    }
}

/// A Ready node with `cpu` cores, 16Gi and 110 pods, plus labels, taints and images.
async fn node(client: &Client, name: &str, cpu: &str, extra: Value) -> Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let mut labels = json!({"kubernetes.io/hostname": name});
    if let Some(l) = extra.get("labels").and_then(Value::as_object) {
        for (k, v) in l {
            labels[k] = v.clone();
        }
    }
    let body = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": extra.get("spec").cloned().unwrap_or(json!({})),
    });
    api.create(&PostParams::default(), &serde_json::from_value(body)?)
        .await?;
    let resources =
        json!({"cpu": cpu, "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    let status = json!({"status": {
        "capacity": resources,
        "allocatable": resources,
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready"}],
        "images": extra.get("images").cloned().unwrap_or(json!([])),
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

/// A pod with one container requesting `cpu`, merged with `spec`.
async fn pod(client: &Client, name: &str, cpu: &str, spec: Value) -> Result<()> {
    pod_with(client, name, json!({}), cpu, spec).await
}

async fn pod_with(
    client: &Client,
    name: &str,
    labels: Value,
    cpu: &str,
    spec: Value,
) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut container = json!({"name": "c", "image": "registry.k8s.io/pause:3.10",
        "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}});
    if let Some(ports) = spec.get("ports") {
        container["ports"] = ports.clone();
    }
    if let Some(image) = spec.get("image") {
        container["image"] = image.clone();
    }
    let mut body = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [container], "terminationGracePeriodSeconds": 30},
    });
    if let Some(obj) = spec.as_object() {
        for (k, v) in obj {
            if k != "ports" && k != "image" {
                body["spec"][k] = v.clone();
            }
        }
    }
    api.create(&PostParams::default(), &serde_json::from_value(body)?)
        .await
        .with_context(|| format!("creating pod {name}"))?;
    Ok(())
}

async fn get_pod(client: &Client, name: &str) -> Result<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    Ok(api.get(name).await?)
}

/// Waits for the pod to be bound and returns its node.
async fn bound(client: &Client, name: &str) -> Result<String> {
    let start = Instant::now();
    loop {
        let p = get_pod(client, name).await?;
        if let Some(node) = p.spec.and_then(|s| s.node_name) {
            return Ok(node);
        }
        if start.elapsed() > Duration::from_secs(20) {
            bail!("pod {name} was not bound within 20s: {:?}", p.status);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Deletes every pod and node, so the next scenario starts from an empty cluster.
async fn reset(client: &Client) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let nodes: Api<Node> = Api::all(client.clone());
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    for p in pods.list(&ListParams::default()).await? {
        let _ = pods
            .delete(p.metadata.name.as_deref().unwrap_or(""), &now)
            .await;
    }
    for n in nodes.list(&ListParams::default()).await? {
        let _ = nodes
            .delete(n.metadata.name.as_deref().unwrap_or(""), &now)
            .await;
    }
    let start = Instant::now();
    while !pods.list(&ListParams::default()).await?.items.is_empty()
        || !nodes.list(&ListParams::default()).await?.items.is_empty()
    {
        if start.elapsed() > Duration::from_secs(10) {
            bail!("cluster did not empty");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the scheduler's watches catch up with the deletions.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}

/// Two nodes `a` and `b`, one pod `p` with `spec`: the node it lands on.
async fn choose(c: &Cluster, a: Value, b: Value, setup: Value, spec: Value) -> Result<String> {
    reset(&c.client).await?;
    node(&c.client, "a", "4", a).await?;
    node(&c.client, "b", "4", b).await?;
    for (i, existing) in setup.as_array().into_iter().flatten().enumerate() {
        let name = format!("existing-{i}");
        let cpu = existing
            .get("cpu")
            .and_then(Value::as_str)
            .unwrap_or("100m");
        pod_with(
            &c.client,
            &name,
            existing.get("labels").cloned().unwrap_or(json!({})),
            cpu,
            existing.get("spec").cloned().unwrap_or(json!({})),
        )
        .await?;
        bound(&c.client, &name).await?;
    }
    pod(&c.client, "p", "100m", spec).await?;
    bound(&c.client, "p").await
}

const CONFIG: &str = "apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
- schedulerName: bin-packing
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_plugin_changes_the_chosen_node() -> Result<()> {
    let c = cluster().await?;
    let s = Scheduler::start(&c.api, Some(CONFIG), &["--leader-elect=false"])?;
    let on = |n: &str| json!({"nodeName": n});

    // NodeResourcesFit LeastAllocated (score): a already holds 2 cpu.
    let got = choose(
        &c,
        json!({}),
        json!({}),
        json!([{"cpu": "2", "spec": on("a")}]),
        json!({}),
    )
    .await?;
    assert_eq!(got, "b", "LeastAllocated");
    // NodeResourcesFit (filter): the pod prefers b, but only a has room for 2 cpu.
    reset(&c.client).await?;
    node(&c.client, "a", "4", json!({})).await?;
    node(&c.client, "b", "1", json!({"labels": {"fast": "yes"}})).await?;
    let prefer_fast = json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "preference": {"matchExpressions": [{"key": "fast", "operator": "Exists"}]}}]}}});
    pod(&c.client, "big", "2", prefer_fast).await?;
    assert_eq!(
        bound(&c.client, "big").await?,
        "a",
        "NodeResourcesFit filter"
    );
    // MostAllocated through a second profile: the fuller node wins.
    let got = choose(
        &c,
        json!({}),
        json!({}),
        json!([{"cpu": "2", "spec": on("a")}]),
        json!({"schedulerName": "bin-packing"}),
    )
    .await?;
    assert_eq!(got, "a", "MostAllocated profile");
    // NodeAffinity: nodeSelector, required In, preferred terms.
    let got = choose(
        &c,
        json!({"labels": {"disk": "ssd"}}),
        json!({}),
        json!([]),
        json!({"nodeSelector": {"disk": "ssd"}}),
    )
    .await?;
    assert_eq!(got, "a", "nodeSelector");
    let got = choose(&c, json!({"labels": {"zone": "z1"}}), json!({"labels": {"zone": "z2"}}), json!([]), json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["z1"]}]}]}}}})).await?;
    assert_eq!(got, "b", "required node affinity NotIn");
    let got = choose(&c, json!({}), json!({"labels": {"fast": "yes"}}), json!([]), json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "preference": {"matchExpressions": [{"key": "fast", "operator": "Exists"}]}}]}}})).await?;
    assert_eq!(got, "b", "preferred node affinity");
    // TaintToleration: NoSchedule filters, PreferNoSchedule scores.
    let got = choose(
        &c,
        json!({"spec": {"taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]}}),
        json!({}),
        json!([]),
        json!({}),
    )
    .await?;
    assert_eq!(got, "b", "NoSchedule taint");
    let got = choose(&c, json!({"spec": {"taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]}}), json!({"spec": {"taints": [{"key": "other", "value": "y", "effect": "NoSchedule"}]}}), json!([]), json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "x", "effect": "NoSchedule"}]})).await?;
    assert_eq!(got, "a", "tolerated taint");
    let got = choose(
        &c,
        json!({"spec": {"taints": [{"key": "soft", "effect": "PreferNoSchedule"}]}}),
        json!({}),
        json!([]),
        json!({}),
    )
    .await?;
    assert_eq!(got, "b", "PreferNoSchedule taint");
    // NodeUnschedulable: a is cordoned.
    let got = choose(
        &c,
        json!({"spec": {"unschedulable": true}}),
        json!({}),
        json!([]),
        json!({}),
    )
    .await?;
    assert_eq!(got, "b", "cordoned node");
    // NodePorts: a already uses hostPort 8080.
    let ports = json!([{"containerPort": 80, "hostPort": 8080}]);
    let got = choose(
        &c,
        json!({}),
        json!({}),
        json!([{"spec": {"nodeName": "a", "ports": ports}}]),
        json!({"ports": ports}),
    )
    .await?;
    assert_eq!(got, "b", "host port conflict");
    // InterPodAffinity: required affinity to the zone of app=db, anti-affinity to app=web.
    let zones = (
        json!({"labels": {"zone": "z1"}}),
        json!({"labels": {"zone": "z2"}}),
    );
    let affinity = json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}]}}});
    let got = choose(
        &c,
        zones.0.clone(),
        zones.1.clone(),
        json!([{"labels": {"app": "db"}, "spec": on("b")}]),
        affinity,
    )
    .await?;
    assert_eq!(got, "b", "pod affinity");
    let anti = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}});
    let got = choose(
        &c,
        json!({}),
        json!({}),
        json!([{"labels": {"app": "web"}, "spec": on("b")}]),
        anti,
    )
    .await?;
    assert_eq!(got, "a", "pod anti-affinity");
    // An existing pod's anti-affinity keeps the incoming pod off its node (symmetry).
    let keep_away = json!({"nodeName": "a", "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"role": "noisy"}}, "topologyKey": "kubernetes.io/hostname"}]}}});
    reset(&c.client).await?;
    node(&c.client, "a", "8", json!({})).await?;
    node(&c.client, "b", "1", json!({})).await?;
    pod(&c.client, "loner", "100m", keep_away).await?;
    pod_with(
        &c.client,
        "noisy",
        json!({"role": "noisy"}),
        "100m",
        json!({}),
    )
    .await?;
    assert_eq!(
        bound(&c.client, "noisy").await?,
        "b",
        "existing pods' anti-affinity"
    );
    // VolumeRestrictions: the same GCE PD cannot be mounted read-write twice on a node.
    let disk = json!({"volumes": [{"name": "d", "gcePersistentDisk": {"pdName": "pd-1"}}]});
    let mut on_a = disk.clone();
    on_a["nodeName"] = json!("a");
    let got = choose(&c, json!({}), json!({"labels": {"fast": "yes"}}), json!([{"spec": on_a}]), {
        let mut d = disk.clone();
        d["affinity"] = json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {"matchExpressions": [{"key": "fast", "operator": "DoesNotExist"}]}}]}});
        d
    })
    .await?;
    assert_eq!(got, "b", "disk conflict");
    let preferred = json!({"affinity": {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "zone"}}]}}});
    let got = choose(
        &c,
        zones.0.clone(),
        zones.1.clone(),
        json!([{"labels": {"app": "cache"}, "spec": on("a")}]),
        preferred,
    )
    .await?;
    assert_eq!(got, "a", "preferred pod affinity");
    // PodTopologySpread: a holds two app=s pods; skew 1 forces b, ScheduleAnyway prefers b.
    let spread = |when: &str| json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": when, "labelSelector": {"matchLabels": {"app": "s"}}}]});
    let existing = json!([{"labels": {"app": "s"}, "spec": on("a")}, {"labels": {"app": "s"}, "spec": on("a")}]);
    reset(&c.client).await?;
    node(&c.client, "a", "4", json!({})).await?;
    node(&c.client, "b", "4", json!({})).await?;
    for (i, e) in existing.as_array().into_iter().flatten().enumerate() {
        pod_with(
            &c.client,
            &format!("s-{i}"),
            e["labels"].clone(),
            "1",
            e["spec"].clone(),
        )
        .await?;
    }
    pod_with(
        &c.client,
        "spread",
        json!({"app": "s"}),
        "100m",
        spread("DoNotSchedule"),
    )
    .await?;
    assert_eq!(
        bound(&c.client, "spread").await?,
        "b",
        "topology spread DoNotSchedule"
    );
    let got = choose(
        &c,
        json!({}),
        json!({}),
        existing.clone(),
        spread("ScheduleAnyway"),
    )
    .await?;
    assert_eq!(got, "b", "topology spread ScheduleAnyway");
    // ImageLocality: b already holds the pod's 800 MB image.
    let images = json!({"images": [{"names": ["example.com/big:1.0"], "sizeBytes": 800_000_000}]});
    let got = choose(
        &c,
        json!({}),
        images,
        json!([]),
        json!({"image": "example.com/big:1.0"}),
    )
    .await?;
    assert_eq!(got, "b", "image locality");

    let (code, metrics) = s.get("/metrics")?;
    assert_eq!(code, 200);
    assert!(
        metrics.contains(
            "scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"scheduled\"}"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("scheduler_pending_pods"));
    assert!(metrics.contains("scheduler_scheduling_attempt_duration_seconds_bucket"));
    assert_eq!(s.get("/readyz")?.0, 200);
    Ok(())
}

/// Creates a namespace with labels.
async fn namespace(client: &Client, name: &str, labels: Value) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let body = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": labels}});
    api.create(&PostParams::default(), &serde_json::from_value(body)?)
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn affinity_terms_select_namespaces_by_label() -> Result<()> {
    let c = cluster().await?;
    namespace(&c.client, "team-b", json!({"team": "b"})).await?;
    // Node a is preferred (node affinity) unless anti-affinity rules it out; the db pod runs on
    // a in namespace team-b.
    node(&c.client, "a", "4", json!({"labels": {"fast": "yes"}})).await?;
    node(&c.client, "b", "4", json!({})).await?;
    let db: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "db", "namespace": "team-b", "labels": {"app": "db"}},
        "spec": {"nodeName": "a", "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}
    }))?;
    Api::<Pod>::namespaced(c.client.clone(), "team-b")
        .create(&PostParams::default(), &db)
        .await?;
    // Started after, so its initial lists hold the namespace and the db pod.
    let s = Scheduler::start(&c.api, None, &["--leader-elect=false"])?;
    let spec = |namespaces: Value| {
        let mut term = json!({"labelSelector": {"matchLabels": {"app": "db"}},
            "topologyKey": "kubernetes.io/hostname"});
        if let Some(obj) = namespaces.as_object() {
            for (k, v) in obj {
                term[k] = v.clone();
            }
        }
        json!({"affinity": {
            "nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100,
                "preference": {"matchExpressions": [{"key": "fast", "operator": "Exists"}]}}]},
            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}})
    };
    let cases = [
        (
            "by-label",
            json!({"namespaceSelector": {"matchLabels": {"team": "b"}}}),
            "b",
        ),
        ("all", json!({"namespaceSelector": {}}), "b"),
        ("listed", json!({"namespaces": ["team-b"]}), "b"),
        (
            "other-label",
            json!({"namespaceSelector": {"matchLabels": {"team": "c"}}}),
            "a",
        ),
        // Neither: the pod's own namespace, where no db runs.
        ("own", json!({}), "a"),
    ];
    for (name, namespaces, want) in cases {
        pod(&c.client, name, "100m", spec(namespaces)).await?;
        let got = bound(&c.client, name).await?;
        assert_eq!(got, want, "{name}:\n{}", s.process.log_text());
        Api::<Pod>::namespaced(c.client.clone(), "default")
            .delete(name, &DeleteParams::default())
            .await?;
    }
    Ok(())
}

/// Lets the scheduler's node watch catch up before pods arrive on its separate pod watch.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// Waits for the pod's PodScheduled=False condition and returns its message.
async fn unschedulable(client: &Client, name: &str) -> Result<String> {
    let start = Instant::now();
    loop {
        let p = get_pod(client, name).await?;
        let cond = p
            .status
            .and_then(|s| s.conditions)
            .and_then(|c| c.into_iter().find(|c| c.type_ == "PodScheduled"));
        if let Some(c) = cond.filter(|c| c.status == "False") {
            return Ok(c.message.unwrap_or_default());
        }
        if start.elapsed() > Duration::from_secs(20) {
            bail!("pod {name} was not marked unschedulable within 20s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A pod labelled app=s spread by hostname with maxSkew 1 (DoNotSchedule), with `extra` merged
/// into the constraint and `spec` into the pod spec.
async fn spread_pod(client: &Client, name: &str, extra: Value, mut spec: Value) -> Result<()> {
    let mut constraint = json!({"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "s"}}});
    for (k, v) in extra.as_object().into_iter().flatten() {
        constraint[k] = v.clone();
    }
    spec["topologySpreadConstraints"] = json!([constraint]);
    pod_with(client, name, json!({"app": "s"}), "100m", spec).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_spread_policies_and_min_domains() -> Result<()> {
    let c = cluster().await?;
    let _s = Scheduler::start(&c.api, None, &["--leader-elect=false"])?;
    let on = |n: &str| json!({"nodeName": n});
    let taint = json!({"spec": {"taints": [{"key": "t", "value": "x", "effect": "NoSchedule"}]}});
    let too_skewed = "node(s) didn't match pod topology spread constraints";

    // nodeTaintsPolicy: a and b hold one app=s pod each; the empty c is tainted. Ignored (the
    // default), c is a domain with 0 pods so a and b are too skewed; honoured, c is left out.
    reset(&c.client).await?;
    node(&c.client, "a", "4", json!({})).await?;
    node(&c.client, "b", "4", json!({})).await?;
    node(&c.client, "c", "4", taint.clone()).await?;
    settle().await;
    pod_with(&c.client, "s-a", json!({"app": "s"}), "100m", on("a")).await?;
    pod_with(&c.client, "s-b", json!({"app": "s"}), "100m", on("b")).await?;
    spread_pod(&c.client, "taints-ignored", json!({}), json!({})).await?;
    let msg = unschedulable(&c.client, "taints-ignored").await?;
    assert!(msg.contains(too_skewed), "{msg}");
    spread_pod(
        &c.client,
        "taints-honored",
        json!({"nodeTaintsPolicy": "Honor"}),
        json!({}),
    )
    .await?;
    let got = bound(&c.client, "taints-honored").await?;
    assert!(got == "a" || got == "b", "{got}");

    // nodeAffinityPolicy: the pod selects pool=x (a, b); the empty c is pool=y. Honoured (the
    // default) c is no domain; ignored, it is one with 0 pods.
    reset(&c.client).await?;
    node(&c.client, "a", "4", json!({"labels": {"pool": "x"}})).await?;
    node(&c.client, "b", "4", json!({"labels": {"pool": "x"}})).await?;
    node(&c.client, "c", "4", json!({"labels": {"pool": "y"}})).await?;
    settle().await;
    pod_with(&c.client, "s-a", json!({"app": "s"}), "100m", on("a")).await?;
    pod_with(&c.client, "s-b", json!({"app": "s"}), "100m", on("b")).await?;
    let pool_x = json!({"nodeSelector": {"pool": "x"}});
    spread_pod(&c.client, "affinity-honored", json!({}), pool_x.clone()).await?;
    let got = bound(&c.client, "affinity-honored").await?;
    assert!(got == "a" || got == "b", "{got}");
    spread_pod(
        &c.client,
        "affinity-ignored",
        json!({"nodeAffinityPolicy": "Ignore"}),
        pool_x,
    )
    .await?;
    let msg = unschedulable(&c.client, "affinity-ignored").await?;
    assert!(msg.contains(too_skewed), "{msg}");

    // minDomains 3 with two domains: the global minimum counts as 0, so neither a nor b (one
    // pod each) is within maxSkew until a third node brings a third domain.
    reset(&c.client).await?;
    node(&c.client, "a", "4", json!({})).await?;
    node(&c.client, "b", "4", json!({})).await?;
    settle().await;
    pod_with(&c.client, "s-a", json!({"app": "s"}), "100m", on("a")).await?;
    pod_with(&c.client, "s-b", json!({"app": "s"}), "100m", on("b")).await?;
    spread_pod(&c.client, "two-domains", json!({}), json!({})).await?;
    let got = bound(&c.client, "two-domains").await?;
    assert!(got == "a" || got == "b", "{got}");
    spread_pod(
        &c.client,
        "min-domains",
        json!({"minDomains": 3}),
        json!({}),
    )
    .await?;
    let msg = unschedulable(&c.client, "min-domains").await?;
    assert!(msg.contains(too_skewed), "{msg}");
    node(&c.client, "c", "4", json!({})).await?;
    assert_eq!(bound(&c.client, "min-domains").await?, "c");

    // matchLabelKeys: only pods with the incoming pod's rev count; a holds two rev=1 pods, b
    // one rev=2 pod, so a rev=2 pod keyed on rev must avoid b.
    reset(&c.client).await?;
    node(&c.client, "a", "4", json!({})).await?;
    node(&c.client, "b", "4", json!({})).await?;
    settle().await;
    for (name, node, rev) in [("r1", "a", "1"), ("r2", "a", "1"), ("r3", "b", "2")] {
        pod_with(
            &c.client,
            name,
            json!({"app": "s", "rev": rev}),
            "100m",
            on(node),
        )
        .await?;
    }
    let mut constraint = json!({"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "s"}},
        "matchLabelKeys": ["rev"]});
    pod_with(
        &c.client,
        "rev2",
        json!({"app": "s", "rev": "2"}),
        "100m",
        json!({"topologySpreadConstraints": [constraint.clone()]}),
    )
    .await?;
    assert_eq!(bound(&c.client, "rev2").await?, "a");
    constraint["matchLabelKeys"] = json!([]);
    pod_with(
        &c.client,
        "no-keys",
        json!({"app": "s", "rev": "2"}),
        "100m",
        json!({"topologySpreadConstraints": [constraint]}),
    )
    .await?;
    assert_eq!(bound(&c.client, "no-keys").await?, "b");
    Ok(())
}

const DEFAULT_SPREAD_CONFIG: &str = "apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
- schedulerName: spread-list
  pluginConfig:
  - name: PodTopologySpread
    args:
      defaultingType: List
      defaultConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: DoNotSchedule
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_spread_constraints_follow_services_and_controllers() -> Result<()> {
    let c = cluster().await?;
    let _s = Scheduler::start(
        &c.api,
        Some(DEFAULT_SPREAD_CONFIG),
        &["--leader-elect=false"],
    )?;
    let on = |n: &str| json!({"nodeName": n});
    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(c.client.clone(), "default");
    services
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}))?,
        )
        .await?;
    let replica_sets: Api<k8s_openapi::api::apps::v1::ReplicaSet> =
        Api::namespaced(c.client.clone(), "default");
    let rs = replica_sets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "rs"}, "spec": {
                "replicas": 0, "selector": {"matchLabels": {"app": "rs-pod"}},
                "template": {"metadata": {"labels": {"app": "rs-pod"}},
                    "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}}}))?,
        )
        .await?;
    let owner = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
        "uid": rs.metadata.uid, "controller": true}]);

    // System defaults (ScheduleAnyway by node, maxSkew 3): a holds three tiny pods of Service
    // web, b one busy pod of nobody's. Resource scores prefer a; spreading web prefers b.
    node(&c.client, "a", "4", json!({})).await?;
    node(&c.client, "b", "4", json!({})).await?;
    settle().await;
    for i in 0..3 {
        pod_with(
            &c.client,
            &format!("w{i}"),
            json!({"app": "web"}),
            "10m",
            on("a"),
        )
        .await?;
    }
    pod_with(&c.client, "busy", json!({}), "1", on("b")).await?;
    pod_with(&c.client, "web", json!({"app": "web"}), "10m", json!({})).await?;
    assert_eq!(
        bound(&c.client, "web").await?,
        "b",
        "spread by the Service's selector"
    );
    pod_with(
        &c.client,
        "plain",
        json!({"app": "plain"}),
        "10m",
        json!({}),
    )
    .await?;
    assert_eq!(
        bound(&c.client, "plain").await?,
        "a",
        "no Service: no default constraints"
    );

    // List defaults (DoNotSchedule by node, maxSkew 1): the ReplicaSet's pods must spread, so
    // the next one avoids a although b is busier.
    reset(&c.client).await?;
    node(&c.client, "a", "4", json!({})).await?;
    node(&c.client, "b", "4", json!({})).await?;
    settle().await;
    pod_with(&c.client, "first", json!({"app": "rs-pod"}), "10m", on("a")).await?;
    pod_with(&c.client, "busy", json!({}), "3", on("b")).await?;
    let listed = json!({"schedulerName": "spread-list"});
    pod_with(
        &c.client,
        "unowned",
        json!({"app": "rs-pod"}),
        "10m",
        listed,
    )
    .await?;
    assert_eq!(
        bound(&c.client, "unowned").await?,
        "a",
        "no owner: no default constraints"
    );
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    pods.delete(
        "unowned",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await?;
    let body = json!({"metadata": {"name": "owned", "labels": {"app": "rs-pod"},
        "ownerReferences": owner}, "spec": {"schedulerName": "spread-list", "containers": [{
        "name": "c", "image": "registry.k8s.io/pause:3.10",
        "resources": {"requests": {"cpu": "10m"}}}]}});
    pods.create(&PostParams::default(), &serde_json::from_value(body)?)
        .await?;
    assert_eq!(
        bound(&c.client, "owned").await?,
        "b",
        "spread by the ReplicaSet's selector"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unschedulable_pods_are_explained_and_retried_on_node_events() -> Result<()> {
    let c = cluster().await?;
    let s = Scheduler::start(&c.api, None, &["--leader-elect=false"])?;
    node(&c.client, "small-1", "1", json!({})).await?;
    node(&c.client, "small-2", "1", json!({})).await?;
    node(
        &c.client,
        "tainted",
        "8",
        json!({"spec": {"taints": [{"key": "team", "value": "ml", "effect": "NoSchedule"}]}}),
    )
    .await?;
    pod(&c.client, "huge", "4", json!({})).await?;

    let want = "0/3 nodes are available: 1 node(s) had untolerated taint {team: ml}, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.";
    let start = Instant::now();
    let condition = loop {
        let p = get_pod(&c.client, "huge").await?;
        let cond = p
            .status
            .and_then(|s| s.conditions)
            .and_then(|c| c.into_iter().find(|c| c.type_ == "PodScheduled"));
        if let Some(cond) = cond {
            break cond;
        }
        if start.elapsed() > Duration::from_secs(20) {
            bail!("no PodScheduled condition:\n{}", s.process.log_text());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(condition.status, "False");
    assert_eq!(condition.reason.as_deref(), Some("Unschedulable"));
    assert_eq!(condition.message.as_deref(), Some(want));

    // kubectl describe shows the FailedScheduling event with upstream's message.
    let start = Instant::now();
    loop {
        let out = c.api.kubectl(&["describe", "pod", "huge"])?;
        let text = output_text(&out);
        if text.contains("FailedScheduling") && text.contains("0/3 nodes are available: 1 node(s) had untolerated taint {team: ml}, 2 Insufficient cpu.") {
            break;
        }
        if start.elapsed() > Duration::from_secs(20) {
            bail!("describe shows no FailedScheduling event:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The explain endpoint names the rejecting plugin for every node.
    let (code, body) = s.get("/debug/explain/default/huge")?;
    assert_eq!(code, 200, "{body}");
    let e: Value = serde_json::from_str(&body)?;
    assert_eq!(e["result"], "Unschedulable");
    let nodes = e["nodes"].as_array().context("nodes")?;
    assert_eq!(nodes.len(), 3, "{body}");
    for n in nodes {
        let plugin = n["rejected"]["plugin"].as_str().unwrap_or("");
        let expected = if n["node"] == "tainted" {
            "TaintToleration"
        } else {
            "NodeResourcesFit"
        };
        assert_eq!(plugin, expected, "{body}");
    }
    assert_eq!(s.get("/debug/explain/default/nope")?.0, 404);

    // A new node that fits moves the pod back from the unschedulable set at once.
    let before = Instant::now();
    node(&c.client, "large", "8", json!({})).await?;
    assert_eq!(bound(&c.client, "huge").await?, "large");
    assert!(
        before.elapsed() < Duration::from_secs(5),
        "took {:?}",
        before.elapsed()
    );
    let (_, body) = s.get("/debug/explain/default/huge")?;
    let e: Value = serde_json::from_str(&body)?;
    assert_eq!(e["result"], "Scheduled");
    assert_eq!(e["selectedNode"], "large");

    // A gated pod waits until its scheduling gates are removed.
    pod(
        &c.client,
        "gated",
        "100m",
        json!({"schedulingGates": [{"name": "example.com/wait"}]}),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let gated = get_pod(&c.client, "gated").await?;
    assert!(gated.spec.and_then(|s| s.node_name).is_none());
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    pods.patch(
        "gated",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"schedulingGates": null}})),
    )
    .await?;
    bound(&c.client, "gated").await?;

    // Scored nodes carry per-plugin scores.
    pod(&c.client, "small", "100m", json!({})).await?;
    bound(&c.client, "small").await?;
    let (_, body) = s.get("/debug/explain/default/small")?;
    let e: Value = serde_json::from_str(&body)?;
    let scored: Vec<&Value> = e["nodes"]
        .as_array()
        .context("nodes")?
        .iter()
        .filter(|n| n["totalScore"].is_number())
        .collect();
    assert!(scored.len() >= 2, "{body}");
    assert!(
        scored[0]["scores"]
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x["plugin"] == "NodeResourcesFit")),
        "{body}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preemption_evicts_the_lowest_priority_victim() -> Result<()> {
    let c = cluster().await?;
    let s = Scheduler::start(&c.api, None, &["--leader-elect=false"])?;
    for (name, value) in [("low", 10), ("mid", 100), ("high", 1000)] {
        c.api.kubectl_stdin(
            &["apply", "-f", "-"],
            Some(&format!("apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: {name}\nvalue: {value}\n")),
        )?;
    }
    node(&c.client, "only", "2", json!({})).await?;
    pod(
        &c.client,
        "victim",
        "1",
        json!({"priorityClassName": "low"}),
    )
    .await?;
    pod(
        &c.client,
        "keeper",
        "1",
        json!({"priorityClassName": "mid"}),
    )
    .await?;
    bound(&c.client, "victim").await?;
    bound(&c.client, "keeper").await?;
    pod(
        &c.client,
        "never",
        "1",
        json!({"priorityClassName": "high", "preemptionPolicy": "Never"}),
    )
    .await?;
    pod(
        &c.client,
        "preemptor",
        "1",
        json!({"priorityClassName": "high"}),
    )
    .await?;

    // The low-priority pod is deleted gracefully; the mid-priority one stays.
    let start = Instant::now();
    loop {
        let victim = get_pod(&c.client, "victim").await?;
        if victim.metadata.deletion_timestamp.is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(20) {
            bail!("victim was not preempted:\n{}", s.process.log_text());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let keeper = get_pod(&c.client, "keeper").await?;
    assert!(keeper.metadata.deletion_timestamp.is_none());
    let start = Instant::now();
    loop {
        let p = get_pod(&c.client, "preemptor").await?;
        if p.status.and_then(|s| s.nominated_node_name).as_deref() == Some("only") {
            break;
        }
        if start.elapsed() > Duration::from_secs(20) {
            bail!("preemptor was not nominated");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Without a kubelet, finish the graceful deletion ourselves; the preemptor then binds.
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    pods.delete(
        "victim",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(bound(&c.client, "preemptor").await?, "only");
    let never = get_pod(&c.client, "never").await?;
    assert!(never.spec.and_then(|s| s.node_name).is_none());
    let (_, body) = s.get("/debug/explain/default/never")?;
    assert!(body.contains("preemptionPolicy=Never"), "{body}");
    let (_, metrics) = s.get("/metrics")?;
    assert!(metrics.contains("scheduler_preemption_attempts_total"));
    Ok(())
}

async fn lease_holder(client: &Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    leases
        .get_opt("kube-scheduler")
        .await
        .ok()??
        .spec?
        .holder_identity
}

async fn scheduled_events(client: &Client, pod: &str) -> Result<usize> {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    Ok(events
        .list(&ListParams::default())
        .await?
        .into_iter()
        .filter(|e| {
            e.involved_object.name.as_deref() == Some(pod)
                && e.reason.as_deref() == Some("Scheduled")
        })
        .count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_bind_once_and_fail_over() -> Result<()> {
    let c = cluster().await?;
    let le = [
        "--leader-elect=true",
        "--leader-elect-lease-duration=4s",
        "--leader-elect-renew-deadline=3s",
        "--leader-elect-retry-period=500ms",
    ];
    let mut first = Scheduler::start(&c.api, None, &le)?;
    let start = Instant::now();
    while lease_holder(&c.client).await.is_none() {
        if start.elapsed() > Duration::from_secs(10) {
            bail!("no leader:\n{}", first.process.log_text());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let leader = lease_holder(&c.client).await.unwrap_or_default();
    let second = Scheduler::start(&c.api, None, &le)?;
    for i in 0..3 {
        node(&c.client, &format!("n{i}"), "8", json!({})).await?;
    }
    for i in 0..20 {
        pod(&c.client, &format!("p{i}"), "100m", json!({})).await?;
    }
    for i in 0..20 {
        bound(&c.client, &format!("p{i}")).await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in 0..20 {
        assert_eq!(
            scheduled_events(&c.client, &format!("p{i}")).await?,
            1,
            "p{i}"
        );
    }
    assert_eq!(lease_holder(&c.client).await.unwrap_or_default(), leader);
    assert!(!second
        .process
        .log_text()
        .contains("successfully acquired lease"));

    // Kill the leader: the standby takes over within the lease duration and schedules.
    first.process.kill();
    let killed = Instant::now();
    pod(&c.client, "after", "100m", json!({})).await?;
    bound(&c.client, "after").await?;
    assert!(
        killed.elapsed() < Duration::from_secs(15),
        "failover took {:?}",
        killed.elapsed()
    );
    assert_ne!(lease_holder(&c.client).await.unwrap_or_default(), leader);
    let log = second.process.log_text();
    assert!(log.contains("successfully acquired lease"), "{log}");
    assert!(!log.contains("binding failed"), "{log}");
    Ok(())
}

/// Benchmark knobs, from the environment (defaults: the 5 000-node case).
fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Records when each pod is first seen bound, through a watch.
fn watch_bindings(
    client: &Client,
) -> std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Instant>>> {
    use futures::StreamExt;
    use kube::runtime::watcher;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let out = seen.clone();
    tokio::spawn(async move {
        let stream = watcher(api, watcher::Config::default());
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            let pods = match event {
                Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => vec![p],
                // Once the run's apiserver is gone every retry fails at once: yield, so the
                // runtime can shut down.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                _ => continue,
            };
            for p in pods {
                if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
                    let name = p.metadata.name.unwrap_or_default();
                    out.lock().unwrap().entry(name).or_insert_with(Instant::now);
                }
            }
        }
    });
    seen
}

async fn in_parallel<F, Fut>(n: usize, concurrency: usize, f: F) -> Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    use futures::StreamExt;
    let results: Vec<Result<()>> = futures::stream::iter(0..n)
        .map(f)
        .buffer_unordered(concurrency)
        .collect()
        .await;
    results.into_iter().collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// One field of a process's /proc/<pid>/smaps_rollup, in KiB (0 when unreadable).
fn smaps_rollup_kib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0)
}

/// How big one benchmark run is.
struct BenchSize {
    nodes: usize,
    running: usize,
    pending: usize,
    latency_pods: usize,
}

impl BenchSize {
    /// The 5 000-node case, resizable through the environment.
    fn large() -> BenchSize {
        BenchSize {
            nodes: knob("SCHED_BENCH_NODES", 5000),
            running: knob("SCHED_BENCH_RUNNING", 1000),
            pending: knob("SCHED_BENCH_PENDING", 10_000),
            latency_pods: knob("SCHED_BENCH_LATENCY_PODS", 1000),
        }
    }

    /// The case upstream's kube-scheduler was measured on: 1 000 pending pods on 100 nodes.
    fn small() -> BenchSize {
        BenchSize {
            nodes: 100,
            running: 0,
            pending: 1000,
            latency_pods: 100,
        }
    }
}

/// One benchmark run: nodes, running pods, then pending pods created before the scheduler
/// starts (throughput), then pods created while it runs (latency). Returns the scheduler's
/// RSS in MiB at the end.
async fn bench_run(
    label: &str,
    size: &BenchSize,
    pending_spec: impl Fn(usize) -> Value,
) -> Result<f64> {
    let &BenchSize {
        nodes,
        running,
        pending,
        latency_pods,
    } = size;
    let c = cluster().await?;
    let client = &c.client;
    let t = Instant::now();
    in_parallel(nodes, 64, |i| async move {
        node(
            client,
            &format!("node-{i}"),
            "4",
            json!({"labels": {"topology.kubernetes.io/zone": format!("zone-{}", i % 10)}}),
        )
        .await
    })
    .await?;
    in_parallel(running, 64, |i| async move {
        pod(
            client,
            &format!("running-{i}"),
            "100m",
            json!({"nodeName": format!("node-{}", i % nodes)}),
        )
        .await
    })
    .await?;
    let spec = &pending_spec;
    in_parallel(pending, 64, |i| async move {
        let s = spec(i);
        pod_with(
            client,
            &format!("pending-{i}"),
            s["labels"].clone(),
            "100m",
            s["spec"].clone(),
        )
        .await
    })
    .await?;
    println!(
        "[{label}] created {nodes} nodes, {running} running and {pending} pending pods in {:?}",
        t.elapsed()
    );

    let bound_at = watch_bindings(client);
    let s = Scheduler::start(&c.api, None, &["--leader-elect=false", "-v=0"])?;
    let started = Instant::now();
    let want = running + pending;
    while bound_at.lock().unwrap().len() < want {
        if started.elapsed() > Duration::from_secs(600) {
            bail!(
                "[{label}] only {} of {want} pods bound",
                bound_at.lock().unwrap().len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (first, last) = {
        let seen = bound_at.lock().unwrap();
        let times: Vec<Instant> = seen
            .iter()
            .filter(|(k, _)| k.starts_with("pending-"))
            .map(|(_, t)| *t)
            .collect();
        (times.iter().min().copied(), times.iter().max().copied())
    };
    let span = match (first, last) {
        (Some(f), Some(l)) => l.duration_since(f),
        _ => Duration::ZERO,
    };
    println!(
        "[{label}] throughput: {pending} pods in {:?} from first to last binding = {:.0} pods/s",
        span,
        pending as f64 / span.as_secs_f64().max(1e-9)
    );

    let created_at = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let ca = &created_at;
    in_parallel(latency_pods, 8, |i| async move {
        let s = spec(pending + i);
        let name = format!("latency-{i}");
        pod_with(
            client,
            &name,
            s["labels"].clone(),
            "100m",
            s["spec"].clone(),
        )
        .await?;
        ca.lock().unwrap().insert(name, Instant::now());
        Ok(())
    })
    .await?;
    let t = Instant::now();
    while bound_at.lock().unwrap().len() < want + latency_pods {
        if t.elapsed() > Duration::from_secs(120) {
            bail!("[{label}] latency pods were not all bound");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut latencies: Vec<Duration> = {
        let seen = bound_at.lock().unwrap();
        let created = created_at.lock().unwrap();
        created
            .iter()
            .filter_map(|(k, c)| seen.get(k).map(|b| b.saturating_duration_since(*c)))
            .collect()
    };
    latencies.sort();
    // The footprint of the idle scheduler holding these pods: it returns freed memory to the
    // system about a second after a burst of work ends.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, metrics) = s.get("/metrics")?;
    let rss = metrics
        .lines()
        .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / (1024.0 * 1024.0);
    let anon = s
        .process
        .id()
        .map_or(0.0, |pid| smaps_rollup_kib(pid, "Anonymous:") / 1024.0);
    println!(
        "[{label}] per-pod latency (create to binding seen): p50 {:?}, p99 {:?}; scheduler RSS {rss:.1} MiB ({anon:.1} MiB anonymous)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );
    Ok(rss)
}

/// `make bench-scheduler`. Run with `--ignored --nocapture` on a release build.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_scheduler() -> Result<()> {
    let runs = std::env::var("SCHED_BENCH_RUNS").unwrap_or_else(|_| "basic,spread,small".into());
    let basic = |_: usize| json!({"labels": {}, "spec": {}});
    if runs.contains("basic") {
        bench_run("basic", &BenchSize::large(), basic).await?;
    }
    if runs.contains("small") {
        let rss = bench_run("100 nodes", &BenchSize::small(), basic).await?;
        println!("[100 nodes] scheduler RSS {rss:.1} MiB (target < 20 MiB; upstream 85-92 MiB)");
    }
    if !runs.contains("spread") {
        return Ok(());
    }
    // Enough anti-affinity groups that each fits one pod per node.
    let size = BenchSize::large();
    let groups = (size.pending + size.latency_pods) / size.nodes.max(1) + 2;
    bench_run("spread+anti-affinity", &size, |i| {
        let group = format!("g{}", i % groups);
        json!({
            "labels": {"app": "bench", "group": group},
            "spec": {
                "topologySpreadConstraints": [{"maxSkew": 5, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "bench"}}}],
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"group": group}}, "topologyKey": "kubernetes.io/hostname"}]}}
            }
        })
    })
    .await?;
    Ok(())
}
