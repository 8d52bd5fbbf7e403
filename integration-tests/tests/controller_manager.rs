//! kube-controller-manager against the real apiserver and etcd. There is no kubelet: tests set
//! pod status through `pods/status` the way a kubelet would.

use std::{future::Future, process::Command, time::Duration};

use anyhow::{bail, Result};
use integration_tests::{binary, free_port, output_text, ApiServer, Etcd, Process};
use k8s_openapi::api::{
    apps::v1::ReplicaSet,
    core::v1::{ConfigMap, Endpoints, Namespace, Pod, Service, ServiceAccount},
    discovery::v1::EndpointSlice,
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
        ControllerManager::start_as(&api.kubeconfig, extra)
    }

    /// Starts it with the identity of `kubeconfig`.
    fn start_as(kubeconfig: &std::path::Path, extra: &[&str]) -> Result<ControllerManager> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let mut cmd = Command::new(binary("kube-controller-manager"));
        cmd.arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!("--secure-port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--cert-dir={}", dir.path().join("certs").display()))
            .arg("--leader-elect-lease-duration=4s")
            .arg("--leader-elect-renew-deadline=3s")
            .arg("--leader-elect-retry-period=500ms")
            .env("RUST_LOG", "info,controller_manager=debug")
            .args(extra);
        let process = Process::spawn(cmd, dir.path().join("kcm.log"))?;
        Ok(ControllerManager {
            process,
            port,
            _dir: dir,
        })
    }

    /// Waits (up to a minute) for `kubectl rollout status` of `workload`, e.g. `deployment/web`.
    fn rollout_status(&self, api: &ApiServer, workload: &str) -> Result<()> {
        kubectl_ok(api, &["rollout", "status", workload, "--timeout=60s"])
            .map(drop)
            .map_err(|e| self.explain(e))
    }

    /// Adds this process's log to a failure.
    fn explain(&self, err: anyhow::Error) -> anyhow::Error {
        anyhow::anyhow!(
            "{err}\n--- kube-controller-manager log ---\n{}",
            self.process.log_text()
        )
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
    set_status(client, ns, name, ready, "10.0.0.1").await
}

async fn set_status(client: &Client, ns: &str, name: &str, ready: bool, ip: &str) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let status = if ready { "True" } else { "False" };
    let now = jiff::Timestamp::now().to_string();
    let patch = json!({ "status": {
        "phase": "Running",
        "podIP": ip,
        "conditions": [
            { "type": "Ready", "status": status, "lastTransitionTime": now },
            { "type": "ContainersReady", "status": status, "lastTransitionTime": now },
        ],
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

async fn pods_in(client: &Client, ns: &str, selector: &str) -> Result<Vec<Pod>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    Ok(api
        .list(&ListParams::default().labels(selector))
        .await?
        .items)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_namespace_gets_default_service_account_and_root_ca() -> Result<()> {
    let (_etcd, api, client) = cluster().await?;
    let _kcm = ControllerManager::start(
        &api,
        &["--controllers=serviceaccount,root-ca-cert-publisher"],
    )?;
    create_namespace(&client, "team-a").await?;
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "team-a");
    eventually(
        "default service account",
        Duration::from_secs(30),
        || async { Ok(sas.get_opt("default").await?.is_some()) },
    )
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
    eventually(
        "recreated service account",
        Duration::from_secs(30),
        || async { Ok(sas.get_opt("default").await?.is_some()) },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
    sets.create(&PostParams::default(), &rs_manifest("web", 3)?)
        .await?;
    // However the watch events interleave, the set settles on 3 pods it owns, the orphan among them.
    let rs_uid = {
        let sets = sets.clone();
        move || {
            let sets = sets.clone();
            async move { Ok::<_, anyhow::Error>(sets.get("web").await?.metadata.uid) }
        }
    };
    eventually(
        "3 owned pods including the adopted orphan",
        Duration::from_secs(30),
        || async {
            let uid = rs_uid().await?;
            let all = pods_in(&client, ns, "app=web").await?;
            let owned = all.iter().all(|p| {
                p.owner_references()
                    .iter()
                    .any(|r| r.controller == Some(true) && Some(&r.uid) == uid.as_ref())
            });
            Ok(all.len() == 3 && owned && all.iter().any(|p| p.name_any() == "orphan"))
        },
    )
    .await
    .map_err(|e| kcm.explain(e))?;

    // Ready pods are worth more than unready ones: scaling down keeps the ready one.
    set_ready(&client, ns, "orphan", true).await?;
    eventually(
        "status counts the ready pod",
        Duration::from_secs(30),
        || async {
            let s = sets.get("web").await?.status.unwrap_or_default();
            Ok(s.replicas == 3 && s.ready_replicas == Some(1) && s.available_replicas == Some(1))
        },
    )
    .await?;
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(&json!({ "spec": { "replicas": 1 } })),
    )
    .await?;
    eventually(
        "scaled to the ready pod",
        Duration::from_secs(30),
        || async {
            let left = pods_in(&client, ns, "app=web").await?;
            Ok(left.len() == 1 && left[0].name_any() == "orphan")
        },
    )
    .await?;

    // A pod whose labels stop matching is released and replaced.
    pods.patch(
        "orphan",
        &PatchParams::default(),
        &Patch::Merge(&json!({ "metadata": { "labels": { "app": "other" } } })),
    )
    .await?;
    eventually("released and replaced", Duration::from_secs(30), || async {
        let released = pods.get("orphan").await?;
        Ok(released.owner_references().is_empty()
            && pods_in(&client, ns, "app=web").await?.len() == 1)
    })
    .await?;
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), ns);
    eventually(
        "SuccessfulCreate events",
        Duration::from_secs(30),
        || async {
            let list = events.list(&ListParams::default()).await?.items;
            Ok(list.iter().any(|e| {
                e.reason.as_deref() == Some("SuccessfulCreate")
                    && e.involved_object.name.as_deref() == Some("web")
            }) && list
                .iter()
                .any(|e| e.reason.as_deref() == Some("SuccessfulDelete")))
        },
    )
    .await?;
    let metrics = fetch_metrics(kcm.port).await?;
    assert!(
        metrics.contains("workqueue_adds_total{name=\"replicaset\"}"),
        "{metrics}"
    );
    assert!(kcm.process.is_running(), "{}", kcm.process.log_text());
    Ok(())
}

/// The controller manager's /metrics over its self-signed secure port.
async fn fetch_metrics(port: u16) -> Result<String> {
    curl(&format!("https://127.0.0.1:{port}/metrics")).await
}

/// GETs a URL of the controller manager's self-signed secure port.
async fn curl(url: &str) -> Result<String> {
    let out = tokio::process::Command::new("curl")
        .args(["-sk", url])
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
                        .is_some_and(|cs| {
                            cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        });
                    if !ready && p.metadata.deletion_timestamp.is_none() {
                        let _ = set_ready(&client, ns, &p.name_any(), true).await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// `kubectl apply` of a manifest, which must succeed.
fn apply(api: &ApiServer, manifest: &str) -> Result<()> {
    let out = api.kubectl_stdin(&["apply", "-f", "-"], Some(manifest))?;
    assert!(out.status.success(), "{}", output_text(&out));
    Ok(())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
    kcm.rollout_status(&api, "deployment/web")?;
    assert_eq!(pods_in(&client, ns, "app=web").await?.len(), 4);

    // Scaling changes the pod count without a new revision.
    kubectl_ok(&api, &["scale", "deployment/web", "--replicas=5"])?;
    eventually("5 ready pods", Duration::from_secs(30), || async {
        let d: k8s_openapi::api::apps::v1::Deployment =
            Api::namespaced(client.clone(), ns).get("web").await?;
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
                                .is_some_and(|cs| {
                                    cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                                })
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
    kcm.rollout_status(&api, "deployment/web")?;
    let pods = pods_in(&client, ns, "app=web").await?;
    assert!(
        images(&pods).iter().all(|i| i == "busybox:2"),
        "{:?}",
        images(&pods)
    );
    let lowest = watcher.await?;
    assert!(
        lowest >= 4,
        "availability fell to {lowest} ready pods (maxUnavailable 1 of 5)"
    );

    let history = kubectl_ok(&api, &["rollout", "history", "deployment/web"])?;
    assert!(history.contains('1') && history.contains('2'), "{history}");

    // Undo returns to the first template, as revision 3, reusing its ReplicaSet.
    kubectl_ok(&api, &["rollout", "undo", "deployment/web"])?;
    kcm.rollout_status(&api, "deployment/web")?;
    eventually("old image back", Duration::from_secs(30), || async {
        let pods = pods_in(&client, ns, "app=web").await?;
        let imgs = images(&pods);
        Ok(imgs.len() == 5 && imgs.iter().all(|i| i == "busybox:1"))
    })
    .await?;
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let rs = sets
        .list(&ListParams::default().labels("app=web"))
        .await?
        .items;
    let d: k8s_openapi::api::apps::v1::Deployment =
        Api::namespaced(client.clone(), ns).get("web").await?;
    assert_eq!(
        rs.len(),
        2,
        "undo reuses the first replica set: {}\n{}",
        serde_json::to_string(&rs.iter().map(|r| r.spec.clone()).collect::<Vec<_>>())?,
        serde_json::to_string(&d.spec)?
    );
    assert_eq!(
        d.annotations()
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("3")
    );

    // Pause and resume are reflected in the Progressing condition; restart rolls a new revision.
    kubectl_ok(&api, &["rollout", "pause", "deployment/web"])?;
    let progressing_reason = || async {
        let d: k8s_openapi::api::apps::v1::Deployment =
            Api::namespaced(client.clone(), ns).get("web").await?;
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
    kcm.rollout_status(&api, "deployment/web")?;
    let d: k8s_openapi::api::apps::v1::Deployment =
        Api::namespaced(client.clone(), ns).get("web").await?;
    assert_eq!(
        d.annotations()
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("4")
    );
    kubelet.abort();
    Ok(())
}

/// The EndpointSlices labelled as belonging to Service `service`.
async fn service_slices(slices: &Api<EndpointSlice>, service: &str) -> Result<Vec<EndpointSlice>> {
    let selector = format!("kubernetes.io/service-name={service}");
    Ok(slices
        .list(&ListParams::default().labels(&selector))
        .await?
        .items)
}

/// (first address, ready) of every endpoint in `slices`, sorted.
fn slice_endpoints(slices: &[EndpointSlice]) -> Vec<(String, bool)> {
    let mut eps: Vec<(String, bool)> = slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .map(|e| {
            (
                e.addresses[0].clone(),
                e.conditions.as_ref().and_then(|c| c.ready) == Some(true),
            )
        })
        .collect();
    eps.sort();
    eps
}

/// A settled service keeps its one slice: an unnamed port (stored as "") must not look changed
/// to the controller, which would otherwise recreate the slice on every sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settled_slice_with_an_unnamed_port_is_left_alone() -> Result<()> {
    let (_etcd, api, client) = cluster().await?;
    let _kcm = ControllerManager::start(&api, &["--controllers=endpointslice"])?;
    let ns = "default";
    let svc: Service = serde_json::from_value(json!({
        "metadata": { "name": "plain" },
        "spec": { "selector": { "app": "plain" }, "ports": [{ "port": 80, "targetPort": 8080 }] },
    }))?;
    Api::<Service>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &svc)
        .await?;
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "plain-1", "labels": { "app": "plain" } },
        "spec": { "containers": [{ "name": "c", "image": "busybox:1" }] },
    }))?;
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &pod)
        .await?;
    set_status(&client, ns, "plain-1", true, "10.1.0.9").await?;
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let identity = || async {
        let list = service_slices(&slices, "plain").await?;
        Ok::<_, anyhow::Error>(
            list.iter()
                .map(|s| {
                    format!(
                        "{}@{}",
                        s.name_any(),
                        s.resource_version().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>(),
        )
    };
    eventually(
        "one slice with the ready pod",
        Duration::from_secs(30),
        || async {
            Ok(slice_endpoints(&service_slices(&slices, "plain").await?)
                == [("10.1.0.9".to_string(), true)])
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled = identity().await?;
    assert_eq!(settled.len(), 1, "{settled:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(identity().await?, settled);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_slices_and_endpoints_follow_pod_readiness() -> Result<()> {
    let (_etcd, api, client) = cluster().await?;
    let kcm = ControllerManager::start(&api, &["--controllers=endpointslice,endpoint"])?;
    let ns = "default";
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let svc: Service = serde_json::from_value(json!({
        "metadata": { "name": "api" },
        "spec": { "selector": { "app": "api" }, "ports": [{ "name": "http", "port": 80, "targetPort": "web" }] },
    }))?;
    services.create(&PostParams::default(), &svc).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    for (name, ip) in [("api-1", "10.1.0.1"), ("api-2", "10.1.0.2")] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": { "name": name, "labels": { "app": "api" } },
            "spec": { "containers": [{ "name": "c", "image": "busybox:1", "ports": [{ "name": "web", "containerPort": 8080 }] }] },
        }))?;
        pods.create(&PostParams::default(), &pod).await?;
        set_status(&client, ns, name, name == "api-1", ip).await?;
    }
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    // (ip, ready) of every endpoint in the service's slices, and the slices' ports.
    let state = || async {
        let list = service_slices(&slices, "api").await?;
        let eps = slice_endpoints(&list);
        let ports: Vec<i32> = list
            .iter()
            .flat_map(|s| s.ports.iter().flatten())
            .filter_map(|p| p.port)
            .collect();
        Ok::<_, anyhow::Error>((eps, ports))
    };
    eventually(
        "slice with one ready and one unready endpoint",
        Duration::from_secs(30),
        || async {
            let (eps, ports) = state().await?;
            Ok(eps
                == [
                    ("10.1.0.1".to_string(), true),
                    ("10.1.0.2".to_string(), false),
                ]
                && ports == [8080])
        },
    )
    .await
    .map_err(|e| kcm.explain(e))?;
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), ns);
    eventually(
        "legacy endpoints split by readiness",
        Duration::from_secs(30),
        || async {
            let Some(ep) = endpoints.get_opt("api").await? else {
                return Ok(false);
            };
            let subset = ep
                .subsets
                .unwrap_or_default()
                .into_iter()
                .next()
                .unwrap_or_default();
            let ips = |a: Option<Vec<k8s_openapi::api::core::v1::EndpointAddress>>| {
                a.unwrap_or_default()
                    .into_iter()
                    .map(|a| a.ip)
                    .collect::<Vec<_>>()
            };
            Ok(ips(subset.addresses) == ["10.1.0.1"]
                && ips(subset.not_ready_addresses) == ["10.1.0.2"])
        },
    )
    .await?;

    set_status(&client, ns, "api-2", true, "10.1.0.2").await?;
    eventually("both endpoints ready", Duration::from_secs(30), || async {
        Ok(state().await?.0
            == [
                ("10.1.0.1".to_string(), true),
                ("10.1.0.2".to_string(), true),
            ])
    })
    .await?;
    let names_before: Vec<String> = service_slices(&slices, "api")
        .await?
        .iter()
        .map(|s| s.name_any())
        .collect();
    pods.delete("api-1", &Default::default()).await?;
    eventually(
        "deleted pod leaves the slice",
        Duration::from_secs(30),
        || async { Ok(state().await?.0 == [("10.1.0.2".to_string(), true)]) },
    )
    .await?;
    let names_after: Vec<String> = service_slices(&slices, "api")
        .await?
        .iter()
        .map(|s| s.name_any())
        .collect();
    assert_eq!(
        names_before, names_after,
        "the slice is updated in place, not replaced"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_empties_and_removes_it() -> Result<()> {
    let (_etcd, api, client) = cluster().await?;
    let kcm = ControllerManager::start(
        &api,
        &["--controllers=namespace,serviceaccount,root-ca-cert-publisher"],
    )?;
    create_namespace(&client, "doomed").await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    for i in 0..3 {
        let cm: ConfigMap = serde_json::from_value(
            json!({ "metadata": { "name": format!("cm-{i}") }, "data": { "k": "v" } }),
        )?;
        cms.create(&PostParams::default(), &cm).await?;
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), "doomed");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "p" },
        "spec": { "containers": [{ "name": "c", "image": "busybox:1" }] },
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "doomed");
    sets.create(&PostParams::default(), &rs_manifest("rs", 0)?)
        .await?;
    // A configmap with a finalizer holds the namespace until the finalizer is removed.
    let held: ConfigMap = serde_json::from_value(
        json!({ "metadata": { "name": "held", "finalizers": ["example.com/hold"] } }),
    )?;
    cms.create(&PostParams::default(), &held).await?;

    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces.delete("doomed", &Default::default()).await?;
    eventually("finalizer reported", Duration::from_secs(30), || async {
        let ns = namespaces.get("doomed").await?;
        let conds = ns.status.and_then(|s| s.conditions).unwrap_or_default();
        Ok(conds
            .iter()
            .any(|c| c.type_ == "NamespaceFinalizersRemaining" && c.status == "True")
            && conds
                .iter()
                .any(|c| c.type_ == "NamespaceContentRemaining" && c.status == "True"))
    })
    .await
    .map_err(|e| kcm.explain(e))?;
    assert!(pods.list(&ListParams::default()).await?.items.is_empty());
    assert!(sets.list(&ListParams::default()).await?.items.is_empty());
    assert_eq!(cms.list(&ListParams::default()).await?.items.len(), 1);
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(&json!({ "metadata": { "finalizers": null } })),
    )
    .await?;
    eventually("namespace gone", Duration::from_secs(30), || async {
        Ok(namespaces.get_opt("doomed").await?.is_none())
    })
    .await
    .map_err(|e| kcm.explain(e))?;
    Ok(())
}

fn deployment_manifest(name: &str, replicas: i32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec: {{containers: [{{name: c, image: \"busybox:1\"}}]}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collector_honours_foreground_background_and_orphan() -> Result<()> {
    let (_etcd, api, client) = cluster().await?;
    // Every default controller at once, as `make up` runs them.
    let kcm = ControllerManager::start(&api, &[])?;
    let ns = "default";
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), ns);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    for name in ["fg", "bg", "orph"] {
        apply(&api, &deployment_manifest(name, 3))?;
    }
    for name in ["fg", "bg", "orph"] {
        eventually("3 pods", Duration::from_secs(30), || async {
            Ok(pods_in(&client, ns, &format!("app={name}")).await?.len() == 3)
        })
        .await
        .map_err(|e| kcm.explain(e))?;
    }

    let health = curl(&format!("https://127.0.0.1:{}/healthz?verbose", kcm.port)).await?;
    for check in [
        "leaderElection",
        "deployment-controller",
        "garbage-collector-controller",
        "namespace-controller",
    ] {
        assert!(health.contains(&format!("[+]{check} ok")), "{health}");
    }

    // Foreground: pods and the ReplicaSet go before the Deployment does.
    kubectl_ok(
        &api,
        &[
            "delete",
            "deployment/fg",
            "--cascade=foreground",
            "--wait=false",
        ],
    )?;
    let saw_waiting_owner = std::sync::atomic::AtomicBool::new(false);
    eventually("foreground deletion", Duration::from_secs(60), || async {
        let d = deployments.get_opt("fg").await?;
        let rs = sets
            .list(&ListParams::default().labels("app=fg"))
            .await?
            .items
            .len();
        let pods = pods_in(&client, ns, "app=fg").await?.len();
        match d {
            Some(d) => {
                if rs + pods > 0 && d.finalizers().iter().any(|f| f == "foregroundDeletion") {
                    saw_waiting_owner.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                Ok(false)
            }
            None => {
                assert_eq!(
                    (rs, pods),
                    (0, 0),
                    "the deployment went before its dependents"
                );
                Ok(true)
            }
        }
    })
    .await
    .map_err(|e| kcm.explain(e))?;
    assert!(
        saw_waiting_owner.load(std::sync::atomic::Ordering::SeqCst),
        "the deployment waited for its dependents"
    );

    // Background: the Deployment goes at once, its dependents after.
    kubectl_ok(&api, &["delete", "deployment/bg"])?;
    eventually("background deletion", Duration::from_secs(60), || async {
        Ok(sets
            .list(&ListParams::default().labels("app=bg"))
            .await?
            .items
            .is_empty()
            && pods_in(&client, ns, "app=bg").await?.is_empty())
    })
    .await
    .map_err(|e| kcm.explain(e))?;

    // Orphan: dependents stay, without the reference to their former owner.
    kubectl_ok(&api, &["delete", "deployment/orph", "--cascade=orphan"])?;
    eventually("orphaned replica set", Duration::from_secs(60), || async {
        let rs = sets
            .list(&ListParams::default().labels("app=orph"))
            .await?
            .items;
        Ok(deployments.get_opt("orph").await?.is_none()
            && rs.len() == 1
            && rs[0].owner_references().is_empty())
    })
    .await
    .map_err(|e| kcm.explain(e))?;
    assert_eq!(pods_in(&client, ns, "app=orph").await?.len(), 3);
    Ok(())
}

/// Finishes a pod the way a kubelet reports it: phase plus the container's exit code.
async fn finish_pod(client: &Client, ns: &str, name: &str, exit_code: i32) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let phase = if exit_code == 0 {
        "Succeeded"
    } else {
        "Failed"
    };
    let patch = json!({ "status": {
        "phase": phase,
        "containerStatuses": [{ "name": "c", "image": "busybox:1", "imageID": "", "ready": false, "restartCount": 0,
            "state": { "terminated": { "exitCode": exit_code } } }],
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

fn job_condition(job: &k8s_openapi::api::batch::v1::Job, type_: &str) -> Option<String> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
        .and_then(|c| c.reason.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_retries_a_failed_pod_and_completes() -> Result<()> {
    let (_etcd, api, client) = cluster().await?;
    let kcm = ControllerManager::start(&api, &["--controllers=job"])?;
    let ns = "default";
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(client.clone(), ns);
    let job: k8s_openapi::api::batch::v1::Job = serde_json::from_value(json!({
        "metadata": { "name": "work" },
        "spec": {
            "completions": 5,
            "parallelism": 2,
            "backoffLimit": 3,
            "template": { "spec": { "restartPolicy": "Never", "containers": [{ "name": "c", "image": "busybox:1" }] } },
        },
    }))?;
    jobs.create(&PostParams::default(), &job).await?;
    // Play the kubelet: the first pod fails, every later one succeeds; never more than 2 run.
    let mut failed_one = false;
    let mut most_active = 0;
    let start = std::time::Instant::now();
    loop {
        let job = jobs.get("work").await?;
        if job_condition(&job, "Complete").is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(90) {
            return Err(kcm.explain(anyhow::anyhow!("job did not complete: {:?}", job.status)));
        }
        let pods = pods_in(&client, ns, "job-name=work").await?;
        let running: Vec<&Pod> = pods
            .iter()
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.phase.clone())
                    .is_none_or(|ph| ph == "Pending" || ph == "Running")
            })
            .collect();
        most_active = most_active.max(running.len());
        for p in running {
            let code = if failed_one { 0 } else { 1 };
            failed_one = true;
            finish_pod(&client, ns, &p.name_any(), code).await?;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let job = jobs.get("work").await?;
    let status = job.status.clone().unwrap_or_default();
    assert_eq!(
        (status.succeeded, status.failed, status.active),
        (Some(5), Some(1), Some(0)),
        "{status:?}"
    );
    assert_eq!(
        job_condition(&job, "SuccessCriteriaMet").as_deref(),
        Some("CompletionsReached")
    );
    assert!(status.completion_time.is_some());
    assert!(most_active <= 2, "parallelism 2 exceeded: {most_active}");
    let pods = pods_in(&client, ns, "job-name=work").await?;
    assert_eq!(
        pods.len(),
        6,
        "five successes and one failure, no duplicates"
    );
    assert!(
        pods.iter().all(|p| p.finalizers().is_empty()),
        "tracking finalizers released"
    );

    // A FailJob rule of the pod failure policy fails the job at once.
    let strict: k8s_openapi::api::batch::v1::Job = serde_json::from_value(json!({
        "metadata": { "name": "strict" },
        "spec": {
            "completions": 3,
            "backoffLimit": 6,
            "podFailurePolicy": { "rules": [{ "action": "FailJob", "onExitCodes": { "operator": "In", "values": [42] } }] },
            "template": { "spec": { "restartPolicy": "Never", "containers": [{ "name": "c", "image": "busybox:1" }] } },
        },
    }))?;
    jobs.create(&PostParams::default(), &strict).await?;
    eventually("a strict pod", Duration::from_secs(30), || async {
        Ok(!pods_in(&client, ns, "job-name=strict").await?.is_empty())
    })
    .await?;
    let first = pods_in(&client, ns, "job-name=strict").await?[0].name_any();
    finish_pod(&client, ns, &first, 42).await?;
    eventually("job failed by policy", Duration::from_secs(30), || async {
        Ok(
            job_condition(&jobs.get("strict").await?, "Failed").as_deref()
                == Some("PodFailurePolicy"),
        )
    })
    .await
    .map_err(|e| kcm.explain(e))?;
    Ok(())
}

/// Heartbeats for a node the way a kubelet sends them: the Lease and the Ready condition.
async fn heartbeat(client: &Client, node: &str) -> Result<()> {
    let now = jiff::Timestamp::now().to_string();
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "kube-node-lease");
    let renew = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let lease = json!({
        "metadata": { "name": node, "namespace": "kube-node-lease" },
        "spec": { "holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": renew },
    });
    if leases.get_opt(node).await?.is_some() {
        leases
            .patch(node, &PatchParams::default(), &Patch::Merge(&lease))
            .await?;
    } else {
        leases
            .create(&PostParams::default(), &serde_json::from_value(lease)?)
            .await?;
    }
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let status = json!({ "status": { "conditions": [
        { "type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
          "lastHeartbeatTime": now, "lastTransitionTime": now },
    ]}});
    nodes
        .patch_status(node, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

fn node_taints(node: &k8s_openapi::api::core::v1::Node) -> Vec<String> {
    let mut t: Vec<String> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|t| format!("{}:{}", t.key, t.effect))
        .collect();
    t.sort();
    t
}

/// TaintNodesByCondition: pressure conditions and cordoning become NoSchedule taints (which the
/// scheduler honours), and the taints go when the conditions clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pressure_conditions_and_cordoning_taint_the_node() -> Result<()> {
    let (_etcd, api, client) = cluster().await?;
    let kcm = ControllerManager::start(
        &api,
        &["--controllers=nodelifecycle", "--node-monitor-period=500ms"],
    )?;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let node: k8s_openapi::api::core::v1::Node =
        serde_json::from_value(json!({ "metadata": { "name": "n1" } }))?;
    nodes.create(&PostParams::default(), &node).await?;
    heartbeat(&client, "n1").await?;
    let disk_pressure = |status: &str| {
        json!({ "status": { "conditions": [
            { "type": "Ready", "status": "True", "reason": "KubeletReady" },
            { "type": "DiskPressure", "status": status, "reason": "KubeletHasDiskPressure" },
        ]}})
    };
    nodes
        .patch_status(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(&disk_pressure("True")),
        )
        .await?;
    kubectl_ok(&api, &["cordon", "n1"])?;
    eventually(
        "pressure and cordon taints",
        Duration::from_secs(20),
        || async {
            Ok(node_taints(&nodes.get("n1").await?)
                == [
                    "node.kubernetes.io/disk-pressure:NoSchedule",
                    "node.kubernetes.io/unschedulable:NoSchedule",
                ])
        },
    )
    .await
    .map_err(|e| kcm.explain(e))?;

    nodes
        .patch_status(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(&disk_pressure("False")),
        )
        .await?;
    kubectl_ok(&api, &["uncordon", "n1"])?;
    eventually("taints lifted", Duration::from_secs(20), || async {
        Ok(node_taints(&nodes.get("n1").await?).is_empty())
    })
    .await
    .map_err(|e| kcm.explain(e))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_node_is_tainted_and_its_pods_evicted_after_toleration_seconds() -> Result<()> {
    let (_etcd, api, client) = cluster().await?;
    let kcm = ControllerManager::start(
        &api,
        &[
            "--controllers=nodelifecycle,taint-eviction-controller",
            "--node-monitor-grace-period=3s",
            "--node-startup-grace-period=3s",
            "--node-monitor-period=500ms",
        ],
    )?;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    for name in ["n1", "n2"] {
        let node: k8s_openapi::api::core::v1::Node =
            serde_json::from_value(json!({ "metadata": { "name": name } }))?;
        nodes.create(&PostParams::default(), &node).await?;
    }
    // n2 stays healthy, so n1 going silent is n1's problem, not the whole cluster's.
    let n2_alive = {
        let client = client.clone();
        tokio::spawn(async move {
            loop {
                let _ = heartbeat(&client, "n2").await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let ns = "default";
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    for (name, seconds) in [("short", 3), ("patient", 3600)] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": { "name": name },
            "spec": {
                "nodeName": "n1",
                "containers": [{ "name": "c", "image": "busybox:1" }],
                "tolerations": [{ "key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds }],
            },
        }))?;
        pods.create(&PostParams::default(), &pod).await?;
        set_ready(&client, ns, name, true).await?;
    }
    // A heartbeating node stays untainted.
    for _ in 0..12 {
        heartbeat(&client, "n1").await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        node_taints(&nodes.get("n1").await?).is_empty(),
        "{:?}",
        node_taints(&nodes.get("n1").await?)
    );

    // Silence: Unknown, unreachable taints, pods not ready.
    let silent_at = std::time::Instant::now();
    eventually("unreachable taints", Duration::from_secs(20), || async {
        let n = nodes.get("n1").await?;
        let ready = n
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Ready");
        Ok(ready.is_some_and(|c| c.status == "Unknown")
            && node_taints(&nodes.get("n1").await?)
                == [
                    "node.kubernetes.io/unreachable:NoExecute",
                    "node.kubernetes.io/unreachable:NoSchedule",
                ])
    })
    .await
    .map_err(|e| kcm.explain(e))?;
    // The zone (no zone labels: the empty one) has one unhealthy node out of two.
    eventually("zone metrics", Duration::from_secs(10), || async {
        let m = fetch_metrics(kcm.port).await?;
        Ok(m.contains("node_collector_zone_size{zone=\"\"} 2")
            && m.contains("node_collector_unhealthy_nodes_in_zone{zone=\"\"} 1")
            && m.contains("node_collector_zone_health{zone=\"\"} 50"))
    })
    .await
    .map_err(|e| kcm.explain(e))?;
    eventually("pods marked not ready", Duration::from_secs(10), || async {
        let p = pods.get("patient").await?;
        Ok(!p
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True"))
    })
    .await?;
    eventually(
        "short-tolerating pod evicted",
        Duration::from_secs(20),
        || async {
            Ok(pods
                .get("short")
                .await?
                .metadata
                .deletion_timestamp
                .is_some())
        },
    )
    .await
    .map_err(|e| kcm.explain(e))?;
    assert!(
        silent_at.elapsed() >= Duration::from_secs(5),
        "evicted before grace period plus tolerationSeconds"
    );
    assert!(pods
        .get("patient")
        .await?
        .metadata
        .deletion_timestamp
        .is_none());

    // The node comes back: taints go.
    heartbeat(&client, "n1").await?;
    eventually("taints removed", Duration::from_secs(20), || async {
        heartbeat(&client, "n1").await?;
        Ok(node_taints(&nodes.get("n1").await?).is_empty())
    })
    .await
    .map_err(|e| kcm.explain(e))?;

    // Every node silent: the zone is fully disrupted everywhere, so nothing is evicted — the
    // nodes keep only their NoSchedule taints.
    n2_alive.abort();
    eventually(
        "only NoSchedule taints on silent nodes",
        Duration::from_secs(20),
        || async {
            let only_no_schedule = ["node.kubernetes.io/unreachable:NoSchedule"];
            Ok(node_taints(&nodes.get("n1").await?) == only_no_schedule
                && node_taints(&nodes.get("n2").await?) == only_no_schedule)
        },
    )
    .await
    .map_err(|e| kcm.explain(e))?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        node_taints(&nodes.get("n1").await?),
        ["node.kubernetes.io/unreachable:NoSchedule"]
    );
    assert!(pods
        .get("patient")
        .await?
        .metadata
        .deletion_timestamp
        .is_none());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_hands_over_without_duplicate_pods() -> Result<()> {
    let (_etcd, api, client) = cluster().await?;
    let args = ["--controllers=deployment,replicaset"];
    let mut first = ControllerManager::start(&api, &args)?;
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "kube-system");
    let holder = || async {
        Ok::<_, anyhow::Error>(
            leases
                .get_opt("kube-controller-manager")
                .await?
                .and_then(|l| l.spec?.holder_identity)
                .unwrap_or_default(),
        )
    };
    eventually("first replica leads", Duration::from_secs(20), || async {
        Ok(!holder().await?.is_empty())
    })
    .await?;
    let first_identity = holder().await?;
    let second = ControllerManager::start(&api, &args)?;

    apply(&api, &deployment_manifest("ha", 5))?;
    eventually("5 pods", Duration::from_secs(30), || async {
        Ok(pods_in(&client, "default", "app=ha").await?.len() == 5)
    })
    .await
    .map_err(|e| first.explain(e))?;
    assert!(fetch_metrics(first.port)
        .await?
        .contains("leader_election_master_status{name=\"kube-controller-manager\"} 1"));
    assert!(fetch_metrics(second.port)
        .await?
        .contains("leader_election_master_status{name=\"kube-controller-manager\"} 0"));

    first.process.kill();
    kubectl_ok(&api, &["scale", "deployment/ha", "--replicas=8"])?;
    eventually("second replica leads", Duration::from_secs(30), || async {
        let h = holder().await?;
        Ok(!h.is_empty() && h != first_identity)
    })
    .await
    .map_err(|e| second.explain(e))?;
    eventually("8 pods", Duration::from_secs(30), || async {
        Ok(pods_in(&client, "default", "app=ha").await?.len() == 8)
    })
    .await
    .map_err(|e| second.explain(e))?;
    // Settled: the new leader does not create more than asked for.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pods_in(&client, "default", "app=ha").await?.len(), 8);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    assert_eq!(
        sets.list(&ListParams::default().labels("app=ha"))
            .await?
            .items
            .len(),
        1
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_gets_its_own_pod_cidr_and_finished_jobs_expire() -> Result<()> {
    let (_etcd, api, client) = cluster().await?;
    let kcm = ControllerManager::start(
        &api,
        &[
            "--controllers=nodeipam,job,ttl-after-finished,garbagecollector",
            "--allocate-node-cidrs",
            "--cluster-cidr=10.244.0.0/16",
            "--node-cidr-mask-size=24",
        ],
    )?;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    for name in ["a", "b", "c"] {
        let node: k8s_openapi::api::core::v1::Node =
            serde_json::from_value(json!({ "metadata": { "name": name } }))?;
        nodes.create(&PostParams::default(), &node).await?;
    }
    eventually("distinct pod CIDRs", Duration::from_secs(30), || async {
        let mut cidrs: Vec<String> = nodes
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter_map(|n| n.spec?.pod_cidr)
            .collect();
        cidrs.sort();
        cidrs.dedup();
        Ok(cidrs.len() == 3
            && cidrs
                .iter()
                .all(|c| c.starts_with("10.244.") && c.ends_with("/24")))
    })
    .await
    .map_err(|e| kcm.explain(e))?;

    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(client.clone(), "default");
    let job: k8s_openapi::api::batch::v1::Job = serde_json::from_value(json!({
        "metadata": { "name": "brief" },
        "spec": {
            "ttlSecondsAfterFinished": 2,
            "template": { "spec": { "restartPolicy": "Never", "containers": [{ "name": "c", "image": "busybox:1" }] } },
        },
    }))?;
    jobs.create(&PostParams::default(), &job).await?;
    eventually("a pod", Duration::from_secs(30), || async {
        Ok(!pods_in(&client, "default", "job-name=brief")
            .await?
            .is_empty())
    })
    .await?;
    let pod = pods_in(&client, "default", "job-name=brief").await?[0].name_any();
    finish_pod(&client, "default", &pod, 0).await?;
    eventually("job complete", Duration::from_secs(30), || async {
        Ok(jobs
            .get_opt("brief")
            .await?
            .is_some_and(|j| job_condition(&j, "Complete").is_some()))
    })
    .await?;
    let finished = std::time::Instant::now();
    eventually("expired job deleted", Duration::from_secs(30), || async {
        Ok(jobs.get_opt("brief").await?.is_none())
    })
    .await
    .map_err(|e| kcm.explain(e))?;
    assert!(
        finished.elapsed() >= Duration::from_secs(1),
        "deleted before its TTL"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cronjob_starts_a_job_when_the_schedule_comes_due() -> Result<()> {
    let (_etcd, api, client) = cluster().await?;
    let kcm = ControllerManager::start(&api, &["--controllers=cronjob"])?;
    let cronjobs: Api<k8s_openapi::api::batch::v1::CronJob> =
        Api::namespaced(client.clone(), "default");
    let cj: k8s_openapi::api::batch::v1::CronJob = serde_json::from_value(json!({
        "metadata": { "name": "tick" },
        "spec": {
            // Upstream's parser takes `@every`; field schedules are covered by unit tests.
            "schedule": "@every 3s",
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "jobTemplate": { "spec": { "template": { "spec": {
                "restartPolicy": "Never", "containers": [{ "name": "c", "image": "busybox:1" }],
            }}}},
        },
    }))?;
    cronjobs.create(&PostParams::default(), &cj).await?;
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(client.clone(), "default");
    eventually("a scheduled job", Duration::from_secs(20), || async {
        Ok(!jobs.list(&ListParams::default()).await?.items.is_empty())
    })
    .await
    .map_err(|e| kcm.explain(e))?;
    let job = jobs.list(&ListParams::default()).await?.items.remove(0);
    let cj = cronjobs.get("tick").await?;
    let owner = job.owner_references().first().cloned();
    assert_eq!(owner.map(|o| o.uid), cj.metadata.uid.clone());
    assert!(job.name_any().starts_with("tick-"), "{}", job.name_any());
    assert!(job
        .annotations()
        .contains_key("batch.kubernetes.io/cronjob-scheduled-timestamp"));
    eventually(
        "status lists the active job",
        Duration::from_secs(15),
        || async {
            let s = cronjobs.get("tick").await?.status.unwrap_or_default();
            Ok(s.last_schedule_time.is_some()
                && s.active
                    .unwrap_or_default()
                    .iter()
                    .any(|r| r.name.as_deref() == Some(job.name_any().as_str())))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_creates_in_order_and_updates_down_to_the_partition() -> Result<()> {
    let (_etcd, api, client) = cluster().await?;
    let kcm = ControllerManager::start(&api, &["--controllers=statefulset,garbagecollector"])?;
    let ns = "default";
    let manifest = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 3
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: c, image: "busybox:1"}]}
  persistentVolumeClaimRetentionPolicy: {whenScaled: Delete}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"#;
    apply(&api, manifest)?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    eventually("db-0", Duration::from_secs(30), || async {
        Ok(pods.get_opt("db-0").await?.is_some())
    })
    .await
    .map_err(|e| kcm.explain(e))?;
    // OrderedReady: db-1 waits for db-0 to be Running and Ready.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(pods.get_opt("db-1").await?.is_none());
    let db0 = pods.get("db-0").await?;
    assert_eq!(
        db0.spec.as_ref().and_then(|s| s.hostname.as_deref()),
        Some("db-0")
    );
    assert_eq!(
        db0.spec.as_ref().and_then(|s| s.subdomain.as_deref()),
        Some("db")
    );
    let kubelet = fake_kubelet(client.clone(), ns);
    kcm.rollout_status(&api, "statefulset/db")?;
    assert_eq!(pods_in(&client, ns, "app=db").await?.len(), 3);
    // Each pod has its own claim, <claim>-<set>-<ordinal>, mounted as the template's volume.
    let claims: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        Api::namespaced(client.clone(), ns);
    let mut names: Vec<String> = claims
        .list(&ListParams::default().labels("app=db"))
        .await?
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    names.sort();
    assert_eq!(names, ["data-db-0", "data-db-1", "data-db-2"]);
    let volume = pods
        .get("db-1")
        .await?
        .spec
        .and_then(|s| s.volumes)
        .unwrap_or_default()
        .into_iter()
        .find(|v| v.name == "data")
        .and_then(|v| v.persistent_volume_claim)
        .map(|c| c.claim_name);
    assert_eq!(volume.as_deref(), Some("data-db-1"));

    // A partitioned rolling update leaves ordinals below the partition alone.
    kubectl_ok(
        &api,
        &[
            "patch",
            "statefulset/db",
            "-p",
            r#"{"spec":{"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":1}}}}"#,
        ],
    )?;
    kubectl_ok(&api, &["set", "image", "statefulset/db", "c=busybox:2"])?;
    let image = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.containers[0].image.clone())
            .unwrap_or_default()
    };
    eventually("db-1 and db-2 updated", Duration::from_secs(60), || async {
        let ready = |p: &Pod| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        let one = pods.get_opt("db-1").await?;
        let two = pods.get_opt("db-2").await?;
        Ok(one.is_some_and(|p| image(&p) == "busybox:2" && ready(&p))
            && two.is_some_and(|p| image(&p) == "busybox:2" && ready(&p)))
    })
    .await
    .map_err(|e| kcm.explain(e))?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(image(&pods.get("db-0").await?), "busybox:1");

    // Both templates are ControllerRevisions; `kubectl rollout undo` goes back to busybox:1.
    let history = kubectl_ok(&api, &["rollout", "history", "statefulset/db"])?;
    let revisions: Vec<&str> = history
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");
    kubectl_ok(&api, &["rollout", "undo", "statefulset/db"])?;
    eventually(
        "db-1 and db-2 rolled back",
        Duration::from_secs(60),
        || async {
            let one = pods.get_opt("db-1").await?;
            let two = pods.get_opt("db-2").await?;
            Ok(one.is_some_and(|p| {
                image(&p) == "busybox:1" && p.metadata.deletion_timestamp.is_none()
            }) && two.is_some_and(|p| {
                image(&p) == "busybox:1" && p.metadata.deletion_timestamp.is_none()
            }))
        },
    )
    .await
    .map_err(|e| kcm.explain(e))?;

    // Scaling down removes the highest ordinal.
    kubectl_ok(&api, &["scale", "statefulset/db", "--replicas=2"])?;
    eventually("db-2 removed", Duration::from_secs(30), || async {
        Ok(pods.get_opt("db-2").await?.is_none())
    })
    .await?;
    assert!(pods.get_opt("db-1").await?.is_some());
    // whenScaled: Delete — the removed pod's claim goes with it; the others stay.
    eventually("data-db-2 removed", Duration::from_secs(30), || async {
        Ok(claims.get_opt("data-db-2").await?.is_none())
    })
    .await
    .map_err(|e| kcm.explain(e))?;
    assert!(claims.get_opt("data-db-1").await?.is_some());
    kubelet.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_runs_one_pod_per_eligible_node_and_rolls() -> Result<()> {
    let (_etcd, api, client) = cluster().await?;
    let kcm = ControllerManager::start(&api, &["--controllers=daemonset"])?;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    for (name, labels, taints) in [
        ("ssd-1", json!({ "disk": "ssd" }), json!([])),
        (
            "ssd-tainted",
            json!({ "disk": "ssd" }),
            json!([{ "key": "dedicated", "value": "db", "effect": "NoSchedule" }]),
        ),
        ("hdd", json!({ "disk": "hdd" }), json!([])),
    ] {
        let node: k8s_openapi::api::core::v1::Node = serde_json::from_value(
            json!({ "metadata": { "name": name, "labels": labels }, "spec": { "taints": taints } }),
        )?;
        nodes.create(&PostParams::default(), &node).await?;
    }
    let manifest = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      nodeSelector: {disk: ssd}
      containers: [{name: c, image: "busybox:1"}]
"#;
    apply(&api, manifest)?;
    let targets = || async {
        let mut t: Vec<String> = pods_in(&client, "default", "app=agent")
            .await?
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| {
                let terms = &p
                    .spec
                    .as_ref()?
                    .affinity
                    .as_ref()?
                    .node_affinity
                    .as_ref()?
                    .required_during_scheduling_ignored_during_execution
                    .as_ref()?
                    .node_selector_terms;
                terms
                    .first()?
                    .match_fields
                    .as_ref()?
                    .first()?
                    .values
                    .as_ref()?
                    .first()
                    .cloned()
            })
            .collect();
        t.sort();
        Ok::<_, anyhow::Error>(t)
    };
    eventually(
        "a pod on the untainted ssd node only",
        Duration::from_secs(30),
        || async { Ok(targets().await? == ["ssd-1"]) },
    )
    .await
    .map_err(|e| kcm.explain(e))?;
    nodes
        .patch(
            "hdd",
            &PatchParams::default(),
            &Patch::Merge(&json!({ "metadata": { "labels": { "disk": "ssd" } } })),
        )
        .await?;
    eventually(
        "a pod on the relabelled node",
        Duration::from_secs(30),
        || async { Ok(targets().await? == ["hdd", "ssd-1"]) },
    )
    .await?;

    let kubelet = fake_kubelet(client.clone(), "default");
    kcm.rollout_status(&api, "daemonset/agent")?;
    kubectl_ok(&api, &["set", "image", "daemonset/agent", "c=busybox:2"])?;
    kcm.rollout_status(&api, "daemonset/agent")?;
    let pods = pods_in(&client, "default", "app=agent").await?;
    assert_eq!(images(&pods), ["busybox:2", "busybox:2"]);

    // Each template is a ControllerRevision: `kubectl rollout undo` goes back to busybox:1,
    // whose revision becomes the newest.
    let revisions = |text: String| -> Vec<String> {
        text.lines()
            .skip(2)
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect()
    };
    let history = kubectl_ok(&api, &["rollout", "history", "daemonset/agent"])?;
    assert_eq!(revisions(history.clone()), ["1", "2"], "{history}");
    let first = kubectl_ok(
        &api,
        &["rollout", "history", "daemonset/agent", "--revision=1"],
    )?;
    assert!(first.contains("busybox:1"), "{first}");
    kubectl_ok(&api, &["rollout", "undo", "daemonset/agent"])?;
    kcm.rollout_status(&api, "daemonset/agent")?;
    eventually("busybox:1 again", Duration::from_secs(30), || async {
        let pods = pods_in(&client, "default", "app=agent").await?;
        Ok(images(&pods) == ["busybox:1", "busybox:1"])
    })
    .await
    .map_err(|e| kcm.explain(e))?;
    let history = kubectl_ok(&api, &["rollout", "history", "daemonset/agent"])?;
    assert_eq!(revisions(history.clone()), ["2", "3"], "{history}");
    let hashes: Vec<String> = pods_in(&client, "default", "app=agent")
        .await?
        .iter()
        .filter_map(|p| p.labels().get("controller-revision-hash").cloned())
        .collect();
    let revs: Api<k8s_openapi::api::apps::v1::ControllerRevision> =
        Api::namespaced(client.clone(), "default");
    let newest = revs
        .list(&ListParams::default().labels("app=agent"))
        .await?
        .items
        .into_iter()
        .max_by_key(|r| r.revision)
        .map(|r| r.name_any());
    assert_eq!(hashes.len(), 2);
    assert!(hashes
        .iter()
        .all(|h| newest.as_deref() == Some(format!("agent-{h}").as_str())));
    kubelet.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_quota_usage_follows_pods_and_objects() -> Result<()> {
    let (_etcd, api, client) = cluster().await?;
    let kcm = ControllerManager::start(&api, &["--controllers=resourcequota"])?;
    let ns = "default";
    let quotas: Api<k8s_openapi::api::core::v1::ResourceQuota> =
        Api::namespaced(client.clone(), ns);
    let quota: k8s_openapi::api::core::v1::ResourceQuota = serde_json::from_value(json!({
        "metadata": { "name": "q" },
        "spec": { "hard": { "pods": "10", "requests.cpu": "4", "configmaps": "5" } },
    }))?;
    quotas.create(&PostParams::default(), &quota).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    for (name, cpu) in [("a", "250m"), ("b", "1")] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": { "name": name },
            "spec": { "containers": [{ "name": "c", "image": "busybox:1", "resources": { "requests": { "cpu": cpu } } }] },
        }))?;
        pods.create(&PostParams::default(), &pod).await?;
    }
    let used = |resource: &'static str| {
        let quotas = quotas.clone();
        async move {
            Ok::<_, anyhow::Error>(
                quotas
                    .get("q")
                    .await?
                    .status
                    .and_then(|s| s.used)
                    .and_then(|u| u.get(resource).map(|q| q.0.clone()))
                    .unwrap_or_default(),
            )
        }
    };
    eventually("usage counted", Duration::from_secs(30), || async {
        Ok(used("pods").await? == "2" && used("requests.cpu").await? == "1250m")
    })
    .await
    .map_err(|e| kcm.explain(e))?;
    assert!(!used("configmaps").await?.is_empty());
    finish_pod(&client, ns, "b", 0).await?;
    eventually(
        "finished pods stop counting",
        Duration::from_secs(30),
        || async { Ok(used("pods").await? == "1" && used("requests.cpu").await? == "250m") },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_endpoints_are_mirrored_into_slices() -> Result<()> {
    let (_etcd, api, client) = cluster().await?;
    let kcm = ControllerManager::start(
        &api,
        &["--controllers=endpointslicemirroring,endpoint,endpointslice"],
    )?;
    let ns = "default";
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let svc: Service = serde_json::from_value(json!({
        "metadata": { "name": "external" },
        "spec": { "ports": [{ "port": 5432 }] },
    }))?;
    services.create(&PostParams::default(), &svc).await?;
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), ns);
    let ep: Endpoints = serde_json::from_value(json!({
        "metadata": { "name": "external" },
        "subsets": [{ "addresses": [{ "ip": "192.168.10.5" }], "notReadyAddresses": [{ "ip": "192.168.10.6" }], "ports": [{ "port": 5432 }] }],
    }))?;
    endpoints.create(&PostParams::default(), &ep).await?;
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let mirrored = || async {
        Ok::<_, anyhow::Error>(slice_endpoints(&service_slices(&slices, "external").await?))
    };
    eventually("mirrored slice", Duration::from_secs(30), || async {
        Ok(mirrored().await?
            == [
                ("192.168.10.5".to_string(), true),
                ("192.168.10.6".to_string(), false),
            ])
    })
    .await
    .map_err(|e| kcm.explain(e))?;
    endpoints.delete("external", &Default::default()).await?;
    eventually(
        "mirror removed with the endpoints",
        Duration::from_secs(30),
        || async { Ok(mirrored().await?.is_empty()) },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexed_job_runs_each_index_and_suspend_stops_pods() -> Result<()> {
    let (_etcd, api, client) = cluster().await?;
    let kcm = ControllerManager::start(&api, &["--controllers=job"])?;
    let ns = "default";
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(client.clone(), ns);
    let job: k8s_openapi::api::batch::v1::Job = serde_json::from_value(json!({
        "metadata": { "name": "idx" },
        "spec": {
            "completions": 3,
            "parallelism": 3,
            "completionMode": "Indexed",
            "template": { "spec": { "restartPolicy": "Never", "containers": [{ "name": "c", "image": "busybox:1" }] } },
        },
    }))?;
    jobs.create(&PostParams::default(), &job).await?;
    eventually("three indexed pods", Duration::from_secs(30), || async {
        Ok(pods_in(&client, ns, "job-name=idx").await?.len() == 3)
    })
    .await
    .map_err(|e| kcm.explain(e))?;
    let pods = pods_in(&client, ns, "job-name=idx").await?;
    let mut indexes: Vec<String> = pods
        .iter()
        .filter_map(|p| {
            p.annotations()
                .get("batch.kubernetes.io/job-completion-index")
                .cloned()
        })
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["0", "1", "2"]);
    for p in &pods {
        let index = &p.annotations()["batch.kubernetes.io/job-completion-index"];
        assert_eq!(
            p.spec.as_ref().and_then(|s| s.hostname.clone()),
            Some(format!("idx-{index}"))
        );
        finish_pod(&client, ns, &p.name_any(), 0).await?;
    }
    eventually("all indexes complete", Duration::from_secs(30), || async {
        let j = jobs.get("idx").await?;
        Ok(job_condition(&j, "Complete").is_some()
            && j.status.and_then(|s| s.completed_indexes).as_deref() == Some("0-2"))
    })
    .await
    .map_err(|e| kcm.explain(e))?;

    // Suspending a running job removes its pods; resuming brings them back.
    let paused: k8s_openapi::api::batch::v1::Job = serde_json::from_value(json!({
        "metadata": { "name": "paused" },
        "spec": {
            "parallelism": 2,
            "completions": 4,
            "template": { "spec": { "restartPolicy": "Never", "containers": [{ "name": "c", "image": "busybox:1" }] } },
        },
    }))?;
    jobs.create(&PostParams::default(), &paused).await?;
    eventually("two pods", Duration::from_secs(30), || async {
        Ok(pods_in(&client, ns, "job-name=paused").await?.len() == 2)
    })
    .await?;
    jobs.patch(
        "paused",
        &PatchParams::default(),
        &Patch::Merge(&json!({ "spec": { "suspend": true } })),
    )
    .await?;
    eventually(
        "suspended without pods",
        Duration::from_secs(30),
        || async {
            let j = jobs.get("paused").await?;
            let active: Vec<Pod> = pods_in(&client, ns, "job-name=paused")
                .await?
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect();
            Ok(job_condition(&j, "Suspended").is_some() && active.is_empty())
        },
    )
    .await
    .map_err(|e| kcm.explain(e))?;
    jobs.patch(
        "paused",
        &PatchParams::default(),
        &Patch::Merge(&json!({ "spec": { "suspend": false } })),
    )
    .await?;
    eventually("resumed with pods", Duration::from_secs(30), || async {
        Ok(pods_in(&client, ns, "job-name=paused")
            .await?
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .count()
            == 2)
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_deployment_removes_old_pods_before_creating_new_ones() -> Result<()> {
    let (_etcd, api, client) = cluster().await?;
    let kcm = ControllerManager::start(&api, &["--controllers=deployment,replicaset"])?;
    let ns = "default";
    let kubelet = fake_kubelet(client.clone(), ns);
    let manifest = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: rec}
spec:
  replicas: 3
  strategy: {type: Recreate}
  selector: {matchLabels: {app: rec}}
  template:
    metadata: {labels: {app: rec}}
    spec: {containers: [{name: c, image: "busybox:1"}]}
"#;
    apply(&api, manifest)?;
    kcm.rollout_status(&api, "deployment/rec")?;
    // Watch that old and new pods never coexist.
    let watcher = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut mixed = false;
            for _ in 0..300 {
                if let Ok(pods) = pods_in(&client, ns, "app=rec").await {
                    let imgs = images(&pods);
                    mixed |= imgs.iter().any(|i| i == "busybox:1")
                        && imgs.iter().any(|i| i == "busybox:2");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            mixed
        })
    };
    kubectl_ok(&api, &["set", "image", "deployment/rec", "c=busybox:2"])?;
    kcm.rollout_status(&api, "deployment/rec")?;
    assert_eq!(
        images(&pods_in(&client, ns, "app=rec").await?),
        ["busybox:2", "busybox:2", "busybox:2"]
    );
    assert!(!watcher.await?, "old and new pods ran at the same time");
    kubelet.abort();
    Ok(())
}

/// With `--use-service-account-credentials` and an identity that holds only
/// `system:kube-controller-manager` (which may not create pods or ReplicaSets), every
/// controller starts under RBAC and a Deployment still gets its pods and is garbage-collected:
/// each controller writes as its own ServiceAccount in kube-system, as the audit log shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controllers_write_with_their_own_service_account_credentials() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = |name: &str| dir.path().join(name);
    let key = rcgen::KeyPair::generate()?;
    std::fs::write(path("sa.key"), key.serialize_pem())?;
    std::fs::write(path("sa.pub"), key.public_key_pem())?;
    std::fs::write(
        path("tokens.csv"),
        "admin-token,admin,admin,system:masters\nkcm-token,system:kube-controller-manager,kcm\n",
    )?;
    std::fs::write(
        path("audit-policy.yaml"),
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n",
    )?;
    let flags = [
        format!("--token-auth-file={}", path("tokens.csv").display()),
        "--authorization-mode=Node,RBAC".to_string(),
        format!(
            "--service-account-signing-key-file={}",
            path("sa.key").display()
        ),
        format!("--service-account-key-file={}", path("sa.pub").display()),
        "--service-account-issuer=https://kubernetes.default.svc".to_string(),
        format!("--audit-log-path={}", path("audit.log").display()),
        format!(
            "--audit-policy-file={}",
            path("audit-policy.yaml").display()
        ),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let etcd = Etcd::start()?;
    let api = ApiServer::start_with(&etcd, &flags)?;
    let client = api.client().await?;
    // The process's own identity may not write the objects the controllers write.
    for resource in ["pods", "replicasets.apps"] {
        let answer = api.kubectl(&[
            "auth",
            "can-i",
            "create",
            resource,
            "--as=system:kube-controller-manager",
        ])?;
        assert_eq!(String::from_utf8_lossy(&answer.stdout).trim(), "no");
    }
    let kubeconfig = path("kcm.kubeconfig");
    std::fs::write(
        &kubeconfig,
        std::fs::read_to_string(&api.kubeconfig)?.replace("admin-token", "kcm-token"),
    )?;
    let kcm = ControllerManager::start_as(&kubeconfig, &["--use-service-account-credentials"])?;
    let _kubelet = fake_kubelet(client.clone(), "default");
    apply(&api, &deployment_manifest("sa-creds", 3))?;
    kcm.rollout_status(&api, "deployment/sa-creds")?;
    assert_eq!(pods_in(&client, "default", "app=sa-creds").await?.len(), 3);

    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "kube-system");
    for name in ["deployment-controller", "replicaset-controller"] {
        assert!(accounts.get_opt(name).await?.is_some(), "no account {name}");
    }
    // A deleted account's tokens are refused; the controller-manager recreates the account
    // and renews the token at once, and the controller carries on.
    accounts
        .delete("replicaset-controller", &kube::api::DeleteParams::default())
        .await?;
    kubectl_ok(&api, &["scale", "deployment/sa-creds", "--replicas=4"])?;
    eventually("a fourth pod", Duration::from_secs(40), || async {
        Ok(pods_in(&client, "default", "app=sa-creds").await?.len() == 4)
    })
    .await
    .map_err(|e| kcm.explain(e))?;
    assert!(accounts.get_opt("replicaset-controller").await?.is_some());

    kubectl_ok(
        &api,
        &["delete", "deployment", "sa-creds", "--cascade=background"],
    )?;
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    eventually(
        "the ReplicaSet collected",
        Duration::from_secs(30),
        || async { Ok(sets.list(&ListParams::default()).await?.items.is_empty()) },
    )
    .await
    .map_err(|e| kcm.explain(e))?;

    // Who wrote what: the audit log names each write's user.
    let log = std::fs::read_to_string(path("audit.log"))?;
    let events: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|e: &serde_json::Value| {
            e["stage"] == "ResponseComplete"
                && e["objectRef"]["namespace"] == "default"
                && e["objectRef"]["subresource"].is_null()
        })
        .collect();
    let writers = |verb: &str, resource: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| {
                e["verb"] == verb
                    && e["objectRef"]["resource"] == resource
                    && e["responseStatus"]["code"]
                        .as_u64()
                        .is_some_and(|c| c < 300)
            })
            .filter_map(|e| e["user"]["username"].as_str().map(String::from))
            .collect()
    };
    // The deleted account's token was refused (whichever write it was on) before the renewed
    // one was used.
    assert!(log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .any(|e| e["objectRef"]["namespace"] == "default" && e["responseStatus"]["code"] == 401));
    assert_eq!(
        writers("create", "replicasets"),
        vec!["system:serviceaccount:kube-system:deployment-controller"]
    );
    assert_eq!(
        writers("delete", "replicasets"),
        vec!["system:serviceaccount:kube-system:generic-garbage-collector"]
    );
    let pod_creators = writers("create", "pods");
    assert_eq!(pod_creators.len(), 4, "{pod_creators:?}");
    assert!(pod_creators
        .iter()
        .all(|u| u == "system:serviceaccount:kube-system:replicaset-controller"));
    Ok(())
}

/// The live pod of `index` of Indexed Job `job`, once there is one.
async fn index_pod(client: &Client, job: &str, index: i32) -> Result<Pod> {
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(40) {
        let pending = pods_in(client, "default", &format!("job-name={job}"))
            .await?
            .into_iter()
            .find(|p| {
                p.annotations()
                    .get("batch.kubernetes.io/job-completion-index")
                    .is_some_and(|i| *i == index.to_string())
                    && p.metadata.deletion_timestamp.is_none()
                    && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending")
            });
        if let Some(pod) = pending {
            return Ok(pod);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("no live pod for index {index} of {job}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexed_jobs_honour_per_index_backoff_and_success_policy() -> Result<()> {
    let (_etcd, api, client) = cluster().await?;
    let kcm = ControllerManager::start(&api, &["--controllers=job"])?;
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(client.clone(), "default");
    let indexed = |name: &str,
                   extra: serde_json::Value|
     -> Result<k8s_openapi::api::batch::v1::Job> {
        let mut spec = json!({
            "completions": 4,
            "parallelism": 4,
            "completionMode": "Indexed",
            "template": { "spec": { "restartPolicy": "Never", "containers": [{ "name": "c", "image": "busybox:1" }] } },
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            spec[k] = v.clone();
        }
        Ok(serde_json::from_value(
            json!({ "metadata": { "name": name }, "spec": spec }),
        )?)
    };
    let condition = |name: &'static str, type_: &'static str, reason: &'static str| {
        let jobs = jobs.clone();
        async move {
            eventually(
                &format!("{name} {type_} ({reason})"),
                Duration::from_secs(40),
                || async {
                    Ok(job_condition(&jobs.get(name).await?, type_).as_deref() == Some(reason))
                },
            )
            .await
        }
    };

    // backoffLimitPerIndex 1: index 0 is retried once, carrying its failure count; a FailIndex
    // rule fails index 1 at once; the job fails for its failed index when the rest succeed.
    let per_index = indexed(
        "per-index",
        json!({
            "backoffLimitPerIndex": 1,
            "podFailurePolicy": { "rules": [{ "action": "FailIndex", "onExitCodes": { "operator": "In", "values": [42] } }] },
        }),
    )?;
    jobs.create(&PostParams::default(), &per_index).await?;
    let first = index_pod(&client, "per-index", 0)
        .await
        .map_err(|e| kcm.explain(e))?;
    assert_eq!(
        first.annotations()["batch.kubernetes.io/job-index-failure-count"],
        "0"
    );
    finish_pod(&client, "default", &first.name_any(), 1).await?;
    let retry = index_pod(&client, "per-index", 0)
        .await
        .map_err(|e| kcm.explain(e))?;
    assert_ne!(retry.name_any(), first.name_any());
    assert_eq!(
        retry.annotations()["batch.kubernetes.io/job-index-failure-count"],
        "1"
    );
    finish_pod(&client, "default", &retry.name_any(), 0).await?;
    let one = index_pod(&client, "per-index", 1).await?;
    finish_pod(&client, "default", &one.name_any(), 42).await?;
    for i in [2, 3] {
        let p = index_pod(&client, "per-index", i).await?;
        finish_pod(&client, "default", &p.name_any(), 0).await?;
    }
    condition("per-index", "Failed", "FailedIndexes")
        .await
        .map_err(|e| kcm.explain(e))?;
    let status = jobs.get("per-index").await?.status.unwrap_or_default();
    assert_eq!(status.failed_indexes.as_deref(), Some("1"), "{status:?}");
    assert_eq!(
        status.completed_indexes.as_deref(),
        Some("0,2,3"),
        "{status:?}"
    );
    assert_eq!((status.failed, status.succeeded), (Some(2), Some(3)));
    // Index 1 was never retried.
    let index_one = pods_in(&client, "default", "job-name=per-index")
        .await?
        .into_iter()
        .filter(|p| p.annotations()["batch.kubernetes.io/job-completion-index"] == "1")
        .count();
    assert_eq!(index_one, 1);

    // Backoff is per index: while index 0 waits to be retried, index 1 starts.
    let staggered = indexed(
        "staggered",
        json!({ "completions": 2, "parallelism": 1, "backoffLimitPerIndex": 1 }),
    )?;
    jobs.create(&PostParams::default(), &staggered).await?;
    let zero = index_pod(&client, "staggered", 0).await?;
    finish_pod(&client, "default", &zero.name_any(), 1).await?;
    let next = index_pod(&client, "staggered", 1).await?;
    let retries: Vec<Pod> = pods_in(&client, "default", "job-name=staggered")
        .await?
        .into_iter()
        .filter(|p| p.metadata.creation_timestamp <= next.metadata.creation_timestamp)
        .filter(|p| p.name_any() != zero.name_any() && p.name_any() != next.name_any())
        .collect();
    assert!(retries.is_empty(), "index 0 retried before index 1 started");

    // maxFailedIndexes 0: the first failed index fails the job.
    let strict = indexed(
        "max-failed",
        json!({ "backoffLimitPerIndex": 0, "maxFailedIndexes": 0 }),
    )?;
    jobs.create(&PostParams::default(), &strict).await?;
    let p = index_pod(&client, "max-failed", 2).await?;
    finish_pod(&client, "default", &p.name_any(), 1).await?;
    condition("max-failed", "Failed", "MaxFailedIndexesExceeded")
        .await
        .map_err(|e| kcm.explain(e))?;

    // successPolicy: indexes 0 and 1 succeeding is enough; the others are stopped.
    let early = indexed(
        "early",
        json!({ "successPolicy": { "rules": [{ "succeededIndexes": "0,1" }] } }),
    )?;
    jobs.create(&PostParams::default(), &early).await?;
    for i in [0, 1] {
        let p = index_pod(&client, "early", i).await?;
        finish_pod(&client, "default", &p.name_any(), 0).await?;
    }
    condition("early", "SuccessCriteriaMet", "SuccessPolicy")
        .await
        .map_err(|e| kcm.explain(e))?;
    condition("early", "Complete", "SuccessPolicy").await?;
    let job = jobs.get("early").await?;
    let met = job
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Complete")
        .and_then(|c| c.message);
    assert_eq!(met.as_deref(), Some("Matched rules at index 0"));
    eventually(
        "the other indexes stopped",
        Duration::from_secs(30),
        || async {
            Ok(pods_in(&client, "default", "job-name=early")
                .await?
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending"))
                .all(|p| p.metadata.deletion_timestamp.is_some()))
        },
    )
    .await?;
    Ok(())
}
