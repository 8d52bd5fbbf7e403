//! kube-controller-manager against the real apiserver and etcd. There is no kubelet: tests set
//! pod status through `pods/status` the way a kubelet would.

use std::{future::Future, process::Command, time::Duration};

use anyhow::{bail, Result};
use integration_tests::{binary, free_port, output_text, ApiServer, Etcd, Process};
use k8s_openapi::api::{
    apps::v1::ReplicaSet,
    core::v1::{ConfigMap, Namespace, Pod, ServiceAccount},
};
use kube::{
    api::{Api, ListParams, Patch, PatchParams, PostParams},
    Client, ResourceExt,
};
use serde_json::json;

/// A running kube-controller-manager.
struct ControllerManager {
    process: Process,
    port: u16,
    _dir: tempfile::TempDir,
}

impl ControllerManager {
    fn start(api: &ApiServer, extra: &[&str]) -> Result<ControllerManager> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let mut cmd = Command::new(binary("kube-controller-manager"));
        cmd.arg(format!("--kubeconfig={}", api.kubeconfig.display()))
            .arg(format!("--secure-port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--cert-dir={}", dir.path().join("certs").display()))
            .arg("--leader-elect-lease-duration=4s")
            .arg("--leader-elect-renew-deadline=3s")
            .arg("--leader-elect-retry-period=500ms")
            .arg("-v=2")
            .args(extra);
        let process = Process::spawn(cmd, dir.path().join("kcm.log"))?;
        Ok(ControllerManager { process, port, _dir: dir })
    }
}

async fn cluster() -> Result<(Etcd, ApiServer, Client)> {
    let etcd = Etcd::start()?;
    let api = ApiServer::start(&etcd)?;
    let client = api.client().await?;
    Ok((etcd, api, client))
}

/// Polls `check` until it returns true, failing with `what` after `timeout`.
async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let start = std::time::Instant::now();
    let mut last = None;
    while start.elapsed() < timeout {
        match check().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("{what} did not happen within {timeout:?} (last error: {last:?})")
}

async fn create_namespace(client: &Client, name: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } }))?;
    api.create(&PostParams::default(), &ns).await?;
    Ok(())
}

/// Marks a pod Running and Ready (or not) through `pods/status`, as a kubelet would.
async fn set_ready(client: &Client, ns: &str, name: &str, ready: bool) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let status = if ready { "True" } else { "False" };
    let now = jiff::Timestamp::now().to_string();
    let patch = json!({ "status": {
        "phase": "Running",
        "podIP": "10.0.0.1",
        "conditions": [
            { "type": "Ready", "status": status, "lastTransitionTime": now },
            { "type": "ContainersReady", "status": status, "lastTransitionTime": now },
        ],
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}

async fn pods_in(client: &Client, ns: &str, selector: &str) -> Result<Vec<Pod>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    Ok(api.list(&ListParams::default().labels(selector)).await?.items)
}

fn rs_manifest(name: &str, replicas: i32) -> Result<ReplicaSet> {
    Ok(serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "c", "image": "busybox:1" }] },
            },
        },
    }))?)
}

#[tokio::test]
async fn new_namespace_gets_default_service_account_and_root_ca() -> Result<()> {
    let (_etcd, api, client) = cluster().await?;
    let _kcm = ControllerManager::start(&api, &["--controllers=serviceaccount,root-ca-cert-publisher"])?;
    create_namespace(&client, "team-a").await?;
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "team-a");
    eventually("default service account", Duration::from_secs(30), || async {
        Ok(sas.get_opt("default").await?.is_some())
    })
    .await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team-a");
    let ca = std::fs::read_to_string(api.ca_file())?;
    eventually("kube-root-ca.crt", Duration::from_secs(30), || async {
        Ok(cms
            .get_opt("kube-root-ca.crt")
            .await?
            .and_then(|cm| cm.data)
            .and_then(|d| d.get("ca.crt").cloned())
            .is_some_and(|v| v == ca))
    })
    .await?;
    // A deleted default account comes back.
    sas.delete("default", &Default::default()).await?;
    eventually("recreated service account", Duration::from_secs(30), || async {
        Ok(sas.get_opt("default").await?.is_some())
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn replicaset_creates_adopts_and_deletes_least_valuable_pods() -> Result<()> {
    let (_etcd, api, client) = cluster().await?;
    let mut kcm = ControllerManager::start(&api, &["--controllers=replicaset"])?;
    let ns = "default";
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    // An orphan that matches is adopted instead of a new pod being created.
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": { "name": "orphan", "labels": { "app": "web" } },
        "spec": { "containers": [{ "name": "c", "image": "busybox:1" }] },
    }))?;
    pods.create(&PostParams::default(), &orphan).await?;
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    sets.create(&PostParams::default(), &rs_manifest("web", 3)?).await?;
    eventually("3 pods", Duration::from_secs(30), || async {
        Ok(pods_in(&client, ns, "app=web").await?.len() == 3)
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", kcm.process.log_text()))?;
    let rs = sets.get("web").await?;
    let all = pods_in(&client, ns, "app=web").await?;
    for p in &all {
        let owner = p.owner_references().iter().find(|r| r.controller == Some(true)).cloned();
        assert_eq!(owner.map(|o| o.uid), rs.metadata.uid.clone(), "pod {} is owned by the replicaset", p.name_any());
    }
    assert!(all.iter().any(|p| p.name_any() == "orphan"));

    // Ready pods are worth more than unready ones: scaling down keeps the ready one.
    set_ready(&client, ns, "orphan", true).await?;
    eventually("status counts the ready pod", Duration::from_secs(30), || async {
        let s = sets.get("web").await?.status.unwrap_or_default();
        Ok(s.replicas == 3 && s.ready_replicas == Some(1) && s.available_replicas == Some(1))
    })
    .await?;
    sets.patch("web", &PatchParams::default(), &Patch::Merge(&json!({ "spec": { "replicas": 1 } })))
        .await?;
    eventually("scaled to the ready pod", Duration::from_secs(30), || async {
        let left = pods_in(&client, ns, "app=web").await?;
        Ok(left.len() == 1 && left[0].name_any() == "orphan")
    })
    .await?;

    // A pod whose labels stop matching is released and replaced.
    pods.patch("orphan", &PatchParams::default(), &Patch::Merge(&json!({ "metadata": { "labels": { "app": "other" } } })))
        .await?;
    eventually("released and replaced", Duration::from_secs(30), || async {
        let released = pods.get("orphan").await?;
        Ok(released.owner_references().is_empty() && pods_in(&client, ns, "app=web").await?.len() == 1)
    })
    .await?;
    let metrics = fetch_metrics(kcm.port).await?;
    assert!(metrics.contains("workqueue_adds_total{name=\"replicaset\"}"), "{metrics}");
    assert!(kcm.process.is_running(), "{}", kcm.process.log_text());
    Ok(())
}

/// The controller manager's /metrics over its self-signed secure port.
async fn fetch_metrics(port: u16) -> Result<String> {
    let out = tokio::process::Command::new("curl")
        .args(["-sk", &format!("https://127.0.0.1:{port}/metrics")])
        .output()
        .await?;
    if !out.status.success() {
        bail!("curl: {}", output_text(&out));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Plays the kubelet for every pod of `ns`: marks each new pod Running and Ready.
fn fake_kubelet(client: Client, ns: &'static str) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Ok(pods) = pods_in(&client, ns, "").await {
                for p in pods {
                    let ready = p
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                    if !ready && p.metadata.deletion_timestamp.is_none() {
                        let _ = set_ready(&client, ns, &p.name_any(), true).await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

fn kubectl_ok(api: &ApiServer, args: &[&str]) -> Result<String> {
    let out = api.kubectl(args)?;
    if !out.status.success() {
        bail!("kubectl {args:?} failed: {}", output_text(&out));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn images(pods: &[Pod]) -> Vec<String> {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.spec.as_ref()?.containers.first()?.image.clone())
        .collect()
}

#[tokio::test]
async fn deployment_rolls_out_within_max_unavailable_and_undoes() -> Result<()> {
    let (_etcd, api, client) = cluster().await?;
    let kcm = ControllerManager::start(&api, &["--controllers=deployment,replicaset"])?;
    let ns = "default";
    let kubelet = fake_kubelet(client.clone(), ns);
    let manifest = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 4
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 1}}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: "busybox:1"}]}
"#;
    api.kubectl_stdin(&["apply", "-f", "-"], Some(manifest))?;
    kubectl_ok(&api, &["rollout", "status", "deployment/web", "--timeout=60s"])
        .map_err(|e| anyhow::anyhow!("{e}\n{}", kcm.process.log_text()))?;
    assert_eq!(pods_in(&client, ns, "app=web").await?.len(), 4);

    // Scaling changes the pod count without a new revision.
    kubectl_ok(&api, &["scale", "deployment/web", "--replicas=5"])?;
    eventually("5 ready pods", Duration::from_secs(30), || async {
        let d: k8s_openapi::api::apps::v1::Deployment = Api::namespaced(client.clone(), ns).get("web").await?;
        Ok(d.status.and_then(|s| s.available_replicas) == Some(5))
    })
    .await?;

    // Roll to a new image while watching availability: never below replicas - maxUnavailable.
    let watcher = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut lowest = usize::MAX;
            for _ in 0..600 {
                if let Ok(pods) = pods_in(&client, ns, "app=web").await {
                    let ready = pods
                        .iter()
                        .filter(|p| p.metadata.deletion_timestamp.is_none())
                        .filter(|p| {
                            p.status
                                .as_ref()
                                .and_then(|s| s.conditions.as_ref())
                                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                        })
                        .count();
                    lowest = lowest.min(ready);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            lowest
        })
    };
    kubectl_ok(&api, &["set", "image", "deployment/web", "c=busybox:2"])?;
    kubectl_ok(&api, &["rollout", "status", "deployment/web", "--timeout=60s"])?;
    let pods = pods_in(&client, ns, "app=web").await?;
    assert!(images(&pods).iter().all(|i| i == "busybox:2"), "{:?}", images(&pods));
    let lowest = watcher.await?;
    assert!(lowest >= 4, "availability fell to {lowest} ready pods (maxUnavailable 1 of 5)");

    let history = kubectl_ok(&api, &["rollout", "history", "deployment/web"])?;
    assert!(history.contains('1') && history.contains('2'), "{history}");

    // Undo returns to the first template, as revision 3, reusing its ReplicaSet.
    kubectl_ok(&api, &["rollout", "undo", "deployment/web"])?;
    kubectl_ok(&api, &["rollout", "status", "deployment/web", "--timeout=60s"])?;
    eventually("old image back", Duration::from_secs(30), || async {
        let pods = pods_in(&client, ns, "app=web").await?;
        let imgs = images(&pods);
        Ok(imgs.len() == 5 && imgs.iter().all(|i| i == "busybox:1"))
    })
    .await?;
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let rs = sets.list(&ListParams::default().labels("app=web")).await?.items;
    assert_eq!(rs.len(), 2, "undo reuses the first replica set");
    let d: k8s_openapi::api::apps::v1::Deployment = Api::namespaced(client.clone(), ns).get("web").await?;
    assert_eq!(d.annotations().get("deployment.kubernetes.io/revision").map(String::as_str), Some("3"));

    // Pause and resume are reflected in the Progressing condition; restart rolls a new revision.
    kubectl_ok(&api, &["rollout", "pause", "deployment/web"])?;
    let progressing_reason = || async {
        let d: k8s_openapi::api::apps::v1::Deployment = Api::namespaced(client.clone(), ns).get("web").await?;
        Ok::<_, anyhow::Error>(
            d.status
                .and_then(|s| s.conditions)
                .and_then(|cs| cs.into_iter().find(|c| c.type_ == "Progressing"))
                .and_then(|c| c.reason)
                .unwrap_or_default(),
        )
    };
    eventually("paused condition", Duration::from_secs(30), || async {
        Ok(progressing_reason().await? == "DeploymentPaused")
    })
    .await?;
    kubectl_ok(&api, &["rollout", "resume", "deployment/web"])?;
    kubectl_ok(&api, &["rollout", "restart", "deployment/web"])?;
    kubectl_ok(&api, &["rollout", "status", "deployment/web", "--timeout=60s"])?;
    let d: k8s_openapi::api::apps::v1::Deployment = Api::namespaced(client.clone(), ns).get("web").await?;
    assert_eq!(d.annotations().get("deployment.kubernetes.io/revision").map(String::as_str), Some("4"));
    kubelet.abort();
    Ok(())
}
