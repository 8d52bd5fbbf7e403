//! kube-apiserver end to end: real etcd, the real binary, kube-rs and the real kubectl.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use integration_tests::{output_text, ApiServer, Etcd};
use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Namespace, PersistentVolumeClaim, Pod, ResourceQuota, Service,
};
use kube::{
    api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams},
    runtime::watcher,
    Client,
};
use serde_json::json;

async fn namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns).await.unwrap();
}

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}),
    )
    .unwrap()
}

fn api_error(err: kube::Error) -> kube::core::Status {
    match err {
        kube::Error::Api(e) => *e,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn crud_preconditions_and_errors() {
    let etcd = Etcd::start().unwrap();
    let server = ApiServer::start(&etcd).unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "crud").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "crud");

    let created = cms
        .create(&PostParams::default(), &cm("a", json!({"app": "x"})))
        .await
        .unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());

    let dup = api_error(
        cms.create(&PostParams::default(), &cm("a", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));

    // A write with the current resourceVersion wins; a second one with the same stale version conflicts.
    let mut next = created.clone();
    next.data = Some([("k".to_string(), "w".to_string())].into());
    let updated = cms
        .replace("a", &PostParams::default(), &next)
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );
    let stale = api_error(
        cms.replace("a", &PostParams::default(), &next)
            .await
            .unwrap_err(),
    );
    assert_eq!((stale.code, stale.reason.as_str()), (409, "Conflict"));

    let invalid = api_error(
        cms.create(&PostParams::default(), &cm("Bad_Name", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((invalid.code, invalid.reason.as_str()), (422, "Invalid"));
    assert!(
        invalid.message.contains("metadata.name"),
        "{}",
        invalid.message
    );

    let missing = api_error(cms.get("nope").await.unwrap_err());
    assert_eq!(missing.code, 404);

    // generateName gets a random suffix.
    let generated: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap();
    let g = cms
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    assert!(g.metadata.name.unwrap().starts_with("gen-"));

    // Merge patch and label selectors.
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"tier": "db"}}})),
    )
    .await
    .unwrap();
    let selected = cms
        .list(&ListParams::default().labels("tier=db,app in (x)"))
        .await
        .unwrap();
    assert_eq!(selected.items.len(), 1);
    let by_name = cms
        .list(&ListParams::default().fields("metadata.name=a"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    let bad_field = api_error(
        cms.list(&ListParams::default().fields("spec.nodeName=x"))
            .await
            .unwrap_err(),
    );
    assert_eq!(bad_field.code, 400);

    cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_error(cms.get("a").await.unwrap_err()).code, 404);
    // Creating in a namespace that does not exist is refused.
    let elsewhere: Api<ConfigMap> = Api::namespaced(client.clone(), "absent");
    let refused = api_error(
        elsewhere
            .create(&PostParams::default(), &cm("x", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(refused.code, 404);
}

/// Patches without a resourceVersion never fail on a concurrent write: the apiserver re-applies
/// them to the newer object (as `kubectl label` racing a controller's status update needs).
#[tokio::test]
async fn concurrent_patches_are_retried_not_refused() {
    let etcd = Etcd::start().unwrap();
    let server = ApiServer::start(&etcd).unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "patches").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "patches");
    cms.create(&PostParams::default(), &cm("shared", json!({})))
        .await
        .unwrap();
    let writers = (0..8).map(|i| {
        let cms = cms.clone();
        async move {
            let patch = json!({"metadata": {"labels": {format!("writer-{i}"): "x"}}});
            cms.patch("shared", &PatchParams::default(), &Patch::Merge(&patch))
                .await
        }
    });
    for result in futures::future::join_all(writers).await {
        result.unwrap();
    }
    let labels = cms.get("shared").await.unwrap().metadata.labels.unwrap();
    assert_eq!(labels.len(), 8, "{labels:?}");

    // A resourceVersion in the patch stays a precondition.
    let stale = json!({"metadata": {"resourceVersion": "1", "labels": {"late": "x"}}});
    let err = api_error(
        cms.patch("shared", &PatchParams::default(), &Patch::Merge(&stale))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
}

#[tokio::test]
async fn pagination_is_consistent() {
    let etcd = Etcd::start().unwrap();
    let server = ApiServer::start(&etcd).unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "pages").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "pages");
    for i in 0..25 {
        cms.create(
            &PostParams::default(),
            &cm(
                &format!("c{i:02}"),
                json!({"n": if i % 2 == 0 { "even" } else { "odd" }}),
            ),
        )
        .await
        .unwrap();
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut lp = ListParams::default().limit(10).labels("n=even");
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = cms.list(&lp).await.unwrap();
        pages += 1;
        // A write between pages must not show up in later pages of the same list.
        if pages == 1 {
            cms.create(&PostParams::default(), &cm("c99", json!({"n": "even"})))
                .await
                .unwrap();
        }
        names.extend(page.items.iter().filter_map(|c| c.metadata.name.clone()));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names.len(), 13, "{names:?}");
    assert_eq!(pages, 2);
    assert!(!names.contains(&"c99".to_string()));
}

#[tokio::test]
async fn watch_reports_selector_transitions_and_resumes() {
    let etcd = Etcd::start().unwrap();
    let server = ApiServer::start(&etcd).unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "w").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "w");
    let first = cms
        .create(&PostParams::default(), &cm("a", json!({"keep": "yes"})))
        .await
        .unwrap();
    let rv = first.metadata.resource_version.unwrap();

    // From a resource version: the events after it, with the selector applied.
    let wp = kube::api::WatchParams::default()
        .labels("keep=yes")
        .timeout(10);
    let mut stream = cms.watch(&wp, &rv).await.unwrap().boxed();
    cms.create(&PostParams::default(), &cm("b", json!({"keep": "yes"})))
        .await
        .unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"keep": "no"}}})),
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(10), stream.try_next()).await {
            Ok(Ok(Some(kube::api::WatchEvent::Added(c)))) => {
                seen.push(format!("ADDED {}", c.metadata.name.unwrap()))
            }
            Ok(Ok(Some(kube::api::WatchEvent::Deleted(c)))) => {
                seen.push(format!("DELETED {}", c.metadata.name.unwrap()))
            }
            Ok(Ok(Some(kube::api::WatchEvent::Modified(c)))) => {
                seen.push(format!("MODIFIED {}", c.metadata.name.unwrap()))
            }
            Ok(Ok(Some(_))) => {}
            other => panic!("watch ended early: {other:?} after {seen:?}"),
        }
    }
    assert_eq!(seen, vec!["ADDED b", "DELETED a"]);
}

/// Reads watcher lines until `until` arrives.
async fn expect(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    lines: &mut Vec<String>,
    until: &str,
) {
    loop {
        let line = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {until}: {lines:?}"))
            .unwrap();
        lines.push(line.clone());
        if line == until {
            return;
        }
    }
}

#[tokio::test]
async fn kube_watcher_survives_an_apiserver_restart_without_gaps_or_duplicates() {
    let etcd = Etcd::start().unwrap();
    let mut server = ApiServer::start(&etcd).unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "restart").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "restart");
    cms.create(&PostParams::default(), &cm("before", json!({})))
        .await
        .unwrap();

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watch_cms = cms.clone();
    let task = tokio::spawn(async move {
        let mut events = watcher(watch_cms, watcher::Config::default()).boxed();
        while let Some(ev) = events.next().await {
            let line = match ev {
                Ok(watcher::Event::Init) => "INIT".to_string(),
                Ok(watcher::Event::InitApply(c)) => {
                    format!("INITAPPLY {}", c.metadata.name.unwrap_or_default())
                }
                Ok(watcher::Event::InitDone) => "INITDONE".to_string(),
                Ok(watcher::Event::Apply(c)) => format!(
                    "APPLY {} {}",
                    c.metadata.name.unwrap_or_default(),
                    c.data.and_then(|d| d.get("k").cloned()).unwrap_or_default()
                ),
                Ok(watcher::Event::Delete(c)) => {
                    format!("DELETE {}", c.metadata.name.unwrap_or_default())
                }
                Err(_) => continue,
            };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut lines = Vec::new();
    expect(&mut rx, &mut lines, "INITDONE").await;
    cms.create(&PostParams::default(), &cm("during", json!({})))
        .await
        .unwrap();
    expect(&mut rx, &mut lines, "APPLY during v").await;

    server.restart().unwrap();
    // Changes made right after the restart, while the watcher reconnects.
    cms.create(&PostParams::default(), &cm("after", json!({})))
        .await
        .unwrap();
    cms.patch(
        "before",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "changed"}})),
    )
    .await
    .unwrap();
    cms.delete("during", &DeleteParams::default())
        .await
        .unwrap();
    expect(&mut rx, &mut lines, "DELETE during").await;
    task.abort();
    assert_eq!(
        lines,
        vec![
            "INIT",
            "INITAPPLY before",
            "INITDONE",
            "APPLY during v",
            "APPLY after v",
            "APPLY before changed",
            "DELETE during"
        ],
        "the watcher relisted or saw an event twice or not at all"
    );
}

#[tokio::test]
async fn losing_one_etcd_member_of_three_does_not_fail_requests() {
    let mut etcd = Etcd::start_cluster(3).unwrap();
    let server = ApiServer::start(&etcd).unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "ha").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "ha");
    cms.create(&PostParams::default(), &cm("one", json!({})))
        .await
        .unwrap();
    etcd.members[0].kill();
    for i in 0..20 {
        cms.create(
            &PostParams::default(),
            &cm(&format!("after-{i}"), json!({})),
        )
        .await
        .unwrap_or_else(|e| panic!("create {i} failed with one member down: {e}"));
    }
    assert_eq!(
        cms.list(&ListParams::default()).await.unwrap().items.len(),
        21
    );
}

#[tokio::test]
async fn pods_delete_gracefully_and_services_get_unique_addresses() {
    let etcd = Etcd::start().unwrap();
    let server = ApiServer::start(&etcd).unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "pods").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "pods");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox:1"}]},
    }))
    .unwrap();
    let created = pods.create(&PostParams::default(), &pod).await.unwrap();
    let spec = created.spec.unwrap();
    assert_eq!(spec.service_account_name.as_deref(), Some("default"));
    assert_eq!(spec.termination_grace_period_seconds, Some(30));
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Pending"));
    pods.delete("p", &DeleteParams::default()).await.unwrap();
    let terminating = pods.get("p").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    pods.delete("p", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert_eq!(api_error(pods.get("p").await.unwrap_err()).code, 404);

    let services: Api<Service> = Api::namespaced(client.clone(), "pods");
    let mut ips = std::collections::HashSet::new();
    let mut ports = std::collections::HashSet::new();
    for i in 0..10 {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": format!("s{i}")},
            "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]},
        }))
        .unwrap();
        let s = services.create(&PostParams::default(), &svc).await.unwrap();
        let spec = s.spec.unwrap();
        assert!(ips.insert(spec.cluster_ip.unwrap()));
        let port = spec.ports.unwrap()[0].node_port.unwrap();
        assert!((30000..=32767).contains(&port));
        assert!(ports.insert(port));
    }
    let default: Api<Service> = Api::namespaced(client.clone(), "default");
    let k = default.get("kubernetes").await.unwrap();
    assert_eq!(k.spec.unwrap().cluster_ip.as_deref(), Some("10.0.0.1"));
}

fn service(name: &str, spec: serde_json::Value) -> Service {
    let mut spec = spec;
    spec["ports"] = json!([{"port": 80}]);
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

#[tokio::test]
async fn dual_stack_services_get_one_address_per_family() {
    let etcd = Etcd::start().unwrap();
    let dual = ApiServer::start_with(
        &etcd,
        &["--service-cluster-ip-range=10.96.0.0/16,fd00:96::/112"],
    )
    .unwrap();
    let single =
        ApiServer::start_with(&etcd, &["--service-cluster-ip-range=10.96.0.0/16"]).unwrap();
    let client = dual.client().await.unwrap();
    namespace(&client, "ds").await;
    let services: Api<Service> = Api::namespaced(client.clone(), "ds");
    let pp = PostParams::default();
    let in_v6_range = |ip: &str| {
        let ip: std::net::Ipv6Addr = ip.parse().unwrap();
        (ip.segments()[..6] == [0xfd00, 0x96, 0, 0, 0, 0]) && ip.segments()[6] == 0
    };

    let both = services
        .create(
            &pp,
            &service(
                "both",
                json!({"selector": {"a": "b"}, "ipFamilyPolicy": "PreferDualStack"}),
            ),
        )
        .await
        .unwrap()
        .spec
        .unwrap();
    let ips = both.cluster_ips.unwrap();
    assert_eq!(ips.len(), 2, "{ips:?}");
    assert_eq!(both.cluster_ip.as_deref(), Some(ips[0].as_str()));
    assert!(ips[0].parse::<std::net::Ipv4Addr>().unwrap().octets()[..2] == [10, 96]);
    assert!(in_v6_range(&ips[1]), "{ips:?}");
    assert_eq!(both.ip_families.unwrap(), ["IPv4", "IPv6"]);
    assert_eq!(both.ip_family_policy.as_deref(), Some("PreferDualStack"));

    let six = services
        .create(
            &pp,
            &service(
                "six",
                json!({"selector": {"a": "b"}, "ipFamilies": ["IPv6"]}),
            ),
        )
        .await
        .unwrap()
        .spec
        .unwrap();
    let ips = six.cluster_ips.unwrap();
    assert_eq!(ips.len(), 1);
    assert!(in_v6_range(&ips[0]), "{ips:?}");
    assert_eq!(six.ip_families.unwrap(), ["IPv6"]);
    assert_eq!(six.ip_family_policy.as_deref(), Some("SingleStack"));

    let headless = services
        .create(&pp, &service("headless", json!({"clusterIP": "None"})))
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(headless.cluster_ips.unwrap(), ["None"]);
    assert_eq!(headless.ip_families.unwrap(), ["IPv4", "IPv6"]);
    assert_eq!(
        headless.ip_family_policy.as_deref(),
        Some("RequireDualStack")
    );

    // Requested addresses are reserved, and a delete gives every family's address back.
    let pinned = json!({"selector": {"a": "b"}, "ipFamilyPolicy": "RequireDualStack",
        "clusterIPs": ["10.96.5.5", "fd00:96::5"], "clusterIP": "10.96.5.5"});
    let spec = services
        .create(&pp, &service("pinned", pinned.clone()))
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(spec.cluster_ips.unwrap(), ["10.96.5.5", "fd00:96::5"]);
    let taken = api_error(
        services
            .create(
                &pp,
                &service(
                    "taken",
                    json!({"selector": {"a": "b"}, "clusterIP": "fd00:96::5"}),
                ),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(taken.code, 422);
    assert!(taken.message.contains("spec.clusterIPs[0]: Invalid value: \"fd00:96::5\": failed to allocate IP fd00:96::5: provided IP is already allocated"), "{}", taken.message);
    services
        .delete("pinned", &DeleteParams::default())
        .await
        .unwrap();
    let again = services
        .create(&pp, &service("pinned-again", pinned))
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(again.cluster_ips.unwrap(), ["10.96.5.5", "fd00:96::5"]);

    // A single-stack apiserver refuses what it cannot honour, with upstream's words.
    let single_client = single.client().await.unwrap();
    let services: Api<Service> = Api::namespaced(single_client, "ds");
    let require = api_error(
        services
            .create(
                &pp,
                &service(
                    "require",
                    json!({"selector": {"a": "b"}, "ipFamilyPolicy": "RequireDualStack"}),
                ),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(require.code, 422);
    assert_eq!(require.reason, "Invalid");
    assert_eq!(
        require.message,
        "Service \"require\" is invalid: spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services"
    );
    let v6 = api_error(
        services
            .create(
                &pp,
                &service(
                    "v6",
                    json!({"selector": {"a": "b"}, "ipFamilies": ["IPv6"]}),
                ),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        v6.message,
        "Service \"v6\" is invalid: spec.ipFamilies[0]: Invalid value: \"IPv6\": not configured on this cluster"
    );
    let prefer = services
        .create(
            &pp,
            &service(
                "prefer",
                json!({"selector": {"a": "b"}, "ipFamilyPolicy": "PreferDualStack"}),
            ),
        )
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(prefer.ip_families.unwrap(), ["IPv4"]);
    assert_eq!(prefer.cluster_ips.unwrap().len(), 1);
}

#[test]
fn kubectl_walkthrough() {
    let etcd = Etcd::start().unwrap();
    let server = ApiServer::start(&etcd).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/acceptance/api-kubectl.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .env("KUBECONFIG", &server.kubeconfig)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));

    // Tables with upstream columns, for each version of kubectl the dispatcher may pick.
    let ok = |args: &[&str]| {
        let o = server.kubectl(args).unwrap();
        assert!(o.status.success(), "{}", output_text(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    ok(&["create", "namespace", "demo"]);
    ok(&["create", "deployment", "web", "--image=nginx", "-n", "demo"]);
    let out = ok(&["get", "deploy,rs,pods", "-n", "demo"]);
    assert!(out.contains("UP-TO-DATE"), "{out}");
    let nodes = ok(&["get", "namespaces", "-o", "wide"]);
    assert!(nodes.contains("STATUS"), "{nodes}");
    let svc = ok(&["get", "svc", "-A"]);
    assert!(
        svc.contains("CLUSTER-IP") && svc.contains("10.0.0.1"),
        "{svc}"
    );
    let yaml = ok(&["get", "deployment", "web", "-n", "demo", "-o", "yaml"]);
    assert!(
        yaml.contains("revisionHistoryLimit: 10") && yaml.contains("maxSurge: 25%"),
        "{yaml}"
    );
}

#[tokio::test]
async fn streaming_lists_and_compacted_revisions() {
    let etcd = Etcd::start().unwrap();
    let mut server = ApiServer::start(&etcd).unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "stream").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "stream");
    let first = cms
        .create(&PostParams::default(), &cm("one", json!({})))
        .await
        .unwrap();
    let old_rv = first.metadata.resource_version.unwrap();
    cms.create(&PostParams::default(), &cm("two", json!({})))
        .await
        .unwrap();

    // kube-rs streams from resourceVersion 0 ("any"), which the watch cache answers as it is:
    // let it catch up with both creates first.
    for _ in 0..100 {
        let cached = cms.list(&ListParams::default().match_any()).await.unwrap();
        if cached.items.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // sendInitialEvents: the current objects arrive as ADDED, then the initial-events-end bookmark.
    let mut events = watcher(cms.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut names = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.try_next()).await {
            Ok(Ok(Some(watcher::Event::InitApply(c)))) => names.push(c.metadata.name.unwrap()),
            Ok(Ok(Some(watcher::Event::InitDone))) => break,
            Ok(Ok(Some(_))) => {}
            other => panic!("streaming list failed: {other:?}"),
        }
    }
    names.sort();
    assert_eq!(names, vec!["one", "two"]);

    // A revision older than the watch cache's window that etcd has compacted away is
    // answered with 410 Expired (the restart empties the cache's window).
    let three = cms
        .create(&PostParams::default(), &cm("three", json!({})))
        .await
        .unwrap();
    let current = three.metadata.resource_version.unwrap();
    let out = etcd.etcdctl(&["compact", &current]).unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    server.restart().unwrap();
    let mut old = cms
        .watch(&kube::api::WatchParams::default().timeout(5), &old_rv)
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(Duration::from_secs(10), old.try_next()).await {
        Ok(Ok(Some(kube::api::WatchEvent::Error(status)))) => assert_eq!(status.code, 410),
        Ok(Err(kube::Error::Api(status))) => assert_eq!(status.code, 410),
        other => panic!("expected 410 Gone, got {other:?}"),
    }
}

fn pod_requesting(name: &str, cpu: Option<&str>) -> Pod {
    let resources = match cpu {
        Some(cpu) => json!({"requests": {"cpu": cpu}}),
        None => json!({}),
    };
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox:1", "resources": resources}]},
    }))
    .unwrap()
}

/// Waits until the apiserver's watch cache (what admission consults first) holds the quota
/// `name` with `used` published for `resource`.
async fn wait_for_cached_quota(quotas: &Api<ResourceQuota>, name: &str, resource: &str) {
    for _ in 0..100 {
        let cached = quotas
            .list(&ListParams::default().match_any())
            .await
            .unwrap();
        let published = cached.items.iter().any(|q| {
            q.metadata.name.as_deref() == Some(name)
                && q.status
                    .as_ref()
                    .and_then(|s| s.used.as_ref())
                    .is_some_and(|u| u.contains_key(resource))
        });
        if published {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("quota {name} never reached the watch cache");
}

/// The usage quota `name` records.
async fn quota_used(
    quotas: &Api<ResourceQuota>,
    name: &str,
) -> std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity> {
    let status = quotas.get_status(name).await.unwrap().status.unwrap();
    status.used.unwrap()
}

/// Creates quota `name` and publishes its status as the quota controller would (its hard
/// limits and the usage given), then waits until the apiserver's cache has it.
async fn publish_quota(
    quotas: &Api<ResourceQuota>,
    name: &str,
    hard: serde_json::Value,
    used: serde_json::Value,
) {
    let quota: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": name}, "spec": {"hard": hard},
    }))
    .unwrap();
    quotas.create(&PostParams::default(), &quota).await.unwrap();
    let status = json!({"status": {"hard": hard, "used": used}});
    quotas
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    let resource = used.as_object().and_then(|u| u.keys().next()).unwrap();
    wait_for_cached_quota(quotas, name, resource).await;
}

#[tokio::test]
async fn resource_quota_admission_refuses_over_quota_and_charges_atomically() {
    let etcd = Etcd::start().unwrap();
    let first = ApiServer::start(&etcd).unwrap();
    let second = ApiServer::start(&etcd).unwrap();
    let client = first.client().await.unwrap();
    let other = second.client().await.unwrap();
    namespace(&client, "quota").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "quota");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "quota");

    let refused = |e: kube::Error| {
        let s = api_error(e);
        assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"), "{s:?}");
        s.message
    };
    // As upstream, a quota binds once the controller has published its hard limits, and
    // refuses what it limits while its usage of those resources is unknown.
    let hard = json!({"pods": "10", "requests.cpu": "1", "count/configmaps": "2"});
    publish_quota(&quotas, "q", hard, json!({"pods": "0"})).await;
    let msg = refused(
        pods.create(
            &PostParams::default(),
            &pod_requesting("early", Some("100m")),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        msg,
        "pods \"early\" is forbidden: status unknown for quota: q, resources: pods,requests.cpu"
    );
    // The quota controller's part, done by hand: nothing used yet.
    let status =
        json!({"status": {"used": {"pods": "0", "requests.cpu": "0", "count/configmaps": "0"}}});
    quotas
        .patch_status("q", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    let msg = refused(
        pods.create(&PostParams::default(), &pod_requesting("nocpu", None))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        msg,
        "pods \"nocpu\" is forbidden: failed quota: q: must specify requests.cpu for: c"
    );

    // Eight pods of 300m race through two apiservers: exactly three fit in 1 CPU.
    let mut racing = Vec::new();
    for i in 0..8 {
        let c = if i % 2 == 0 { &client } else { &other };
        let api: Api<Pod> = Api::namespaced(c.clone(), "quota");
        racing.push(tokio::spawn(async move {
            api.create(
                &PostParams::default(),
                &pod_requesting(&format!("p{i}"), Some("300m")),
            )
            .await
        }));
    }
    let mut admitted = 0;
    for r in racing {
        match r.await.unwrap() {
            Ok(_) => admitted += 1,
            Err(e) => assert_eq!(
                refused(e).split_once(" is forbidden: ").unwrap().1,
                "exceeded quota: q, requested: requests.cpu=300m, used: requests.cpu=900m, limited: requests.cpu=1"
            ),
        }
    }
    assert_eq!(admitted, 3);
    let used = quota_used(&quotas, "q").await;
    assert_eq!(used["pods"].0, "3");
    assert_eq!(used["requests.cpu"].0, "900m");
    assert_eq!(
        pods.list(&ListParams::default()).await.unwrap().items.len(),
        3
    );

    // Object counts: the third ConfigMap is refused; dry runs are checked but not charged.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "quota");
    cms.create(
        &PostParams {
            dry_run: true,
            ..Default::default()
        },
        &cm("dry", json!({})),
    )
    .await
    .unwrap();
    cms.create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &cm("b", json!({})))
        .await
        .unwrap();
    let msg = refused(
        cms.create(&PostParams::default(), &cm("c", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        msg,
        "configmaps \"c\" is forbidden: exceeded quota: q, requested: count/configmaps=1, used: count/configmaps=2, limited: count/configmaps=2"
    );

    // Deleting does not free usage in the apiserver; the controller's recount does.
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(cms
        .create(&PostParams::default(), &cm("c", json!({})))
        .await
        .is_err());
    let recount = json!({"status": {"used": {"count/configmaps": "1"}}});
    quotas
        .patch_status("q", &PatchParams::default(), &Patch::Merge(&recount))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &cm("c", json!({})))
        .await
        .unwrap();

    // Updates are charged what they add: a Service turning NodePort takes a node port.
    let nodeports = json!({"services.nodeports": "1"});
    let unused = json!({"services.nodeports": "0"});
    publish_quota(&quotas, "ports", nodeports, unused).await;
    let services: Api<Service> = Api::namespaced(client.clone(), "quota");
    for name in ["one", "two"] {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": name}, "spec": {"ports": [{"port": 80}]},
        }))
        .unwrap();
        services.create(&PostParams::default(), &svc).await.unwrap();
    }
    let node_port = json!({"spec": {"type": "NodePort"}});
    services
        .patch("one", &PatchParams::default(), &Patch::Merge(&node_port))
        .await
        .unwrap();
    let msg = refused(
        services
            .patch("two", &PatchParams::default(), &Patch::Merge(&node_port))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        msg,
        "services \"two\" is forbidden: exceeded quota: ports, requested: services.nodeports=1, used: services.nodeports=1, limited: services.nodeports=1"
    );
    let used = quota_used(&quotas, "ports").await;
    assert_eq!(used["services.nodeports"].0, "1");
}

#[tokio::test]
async fn limit_ranger_defaults_and_bounds_pods_and_claims() {
    let etcd = Etcd::start().unwrap();
    let server = ApiServer::start(&etcd).unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "limits").await;
    let ranges: Api<LimitRange> = Api::namespaced(client.clone(), "limits");
    let range: LimitRange = serde_json::from_value(json!({
        "metadata": {"name": "lr"},
        "spec": {"limits": [
            {"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "100m"}, "max": {"cpu": "1"}},
            {"type": "PersistentVolumeClaim", "max": {"storage": "10Gi"}}
        ]},
    }))
    .unwrap();
    ranges.create(&PostParams::default(), &range).await.unwrap();
    // A quota on requests.cpu admits pods once LimitRanger has given them a request.
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "limits");
    let cpu = json!({"requests.cpu": "2"});
    publish_quota(&quotas, "q", cpu, json!({"requests.cpu": "0"})).await;
    // The cache LimitRanger reads may trail the write by a moment.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "limits");
    let mut created = None;
    for _ in 0..50 {
        match pods
            .create(&PostParams::default(), &pod_requesting("plain", None))
            .await
        {
            Ok(p) => {
                created = Some(p);
                break;
            }
            Err(e) => {
                let s = api_error(e);
                assert!(s.message.contains("must specify requests.cpu"), "{s:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let created = created.expect("LimitRanger never defaulted the pod");
    let resources = created.spec.unwrap().containers[0]
        .resources
        .clone()
        .unwrap();
    assert_eq!(resources.requests.unwrap()["cpu"].0, "100m");
    assert_eq!(resources.limits.unwrap()["cpu"].0, "500m");
    assert_eq!(
        created.metadata.annotations.unwrap()["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu request for container c; cpu limit for container c"
    );
    assert_eq!(
        created.status.unwrap().qos_class.as_deref(),
        Some("Burstable")
    );
    let used = quota_used(&quotas, "q").await;
    assert_eq!(used["requests.cpu"].0, "100m");

    let big: Pod = serde_json::from_value(json!({
        "metadata": {"name": "big"},
        "spec": {"containers": [{"name": "c", "image": "busybox:1", "resources": {"limits": {"cpu": "2"}}}]},
    }))
    .unwrap();
    let s = api_error(pods.create(&PostParams::default(), &big).await.unwrap_err());
    assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        s.message,
        "pods \"big\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"
    );

    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "limits");
    let claim = |name: &str, size: &str| -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
        }))
        .unwrap()
    };
    let s = api_error(
        claims
            .create(&PostParams::default(), &claim("huge", "20Gi"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        s.message,
        "persistentvolumeclaims \"huge\" is forbidden: maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi"
    );
    let ok = claims
        .create(&PostParams::default(), &claim("small", "1Gi"))
        .await
        .unwrap();
    assert_eq!(ok.status.unwrap().phase.as_deref(), Some("Pending"));
}

const NEW_RESOURCES: &str = r#"
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: kinds}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: fast
  resources: {requests: {storage: 1Gi}}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: fast}
provisioner: example.com/fast
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: kinds}
spec:
  rules:
  - host: web.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: kinds}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: kinds}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 5
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
---
apiVersion: v1
kind: ReplicationController
metadata: {name: rc, namespace: kinds}
spec:
  replicas: 1
  selector: {app: rc}
  template:
    metadata: {labels: {app: rc}}
    spec:
      containers: [{name: c, image: busybox:1}]
"#;

#[tokio::test]
async fn kubectl_serves_storage_networking_autoscaling_and_certificates() {
    let etcd = Etcd::start().unwrap();
    let server = ApiServer::start(&etcd).unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "kinds").await;
    let ok = |args: &[&str], stdin: Option<&str>| {
        let o = server.kubectl_stdin(args, stdin).unwrap();
        assert!(o.status.success(), "{args:?}: {}", output_text(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let resources = ok(&["api-resources", "--no-headers"], None);
    for (name, short, group) in [
        ("persistentvolumeclaims", "pvc", "v1"),
        ("persistentvolumes", "pv", "v1"),
        ("replicationcontrollers", "rc", "v1"),
        ("storageclasses", "sc", "storage.k8s.io/v1"),
        ("csidrivers", "", "storage.k8s.io/v1"),
        ("csinodes", "", "storage.k8s.io/v1"),
        ("volumeattachments", "", "storage.k8s.io/v1"),
        ("ingresses", "ing", "networking.k8s.io/v1"),
        ("ingressclasses", "", "networking.k8s.io/v1"),
        ("networkpolicies", "netpol", "networking.k8s.io/v1"),
        ("horizontalpodautoscalers", "hpa", "autoscaling/v2"),
        ("runtimeclasses", "", "node.k8s.io/v1"),
        (
            "certificatesigningrequests",
            "csr",
            "certificates.k8s.io/v1",
        ),
        (
            "validatingwebhookconfigurations",
            "",
            "admissionregistration.k8s.io/v1",
        ),
        (
            "mutatingwebhookconfigurations",
            "",
            "admissionregistration.k8s.io/v1",
        ),
    ] {
        let line = resources
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} missing from api-resources:\n{resources}"));
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert!(fields.contains(&group), "{line}");
        if !short.is_empty() {
            assert_eq!(fields[1], short, "{line}");
        }
    }

    ok(&["create", "-f", "-"], Some(NEW_RESOURCES));
    let headers = |resource: &str| {
        let out = ok(&["get", resource, "-n", "kinds"], None);
        out.lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        headers("pvc"),
        "NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE"
    );
    let pvc = ok(&["get", "pvc", "data", "-n", "kinds", "--no-headers"], None);
    assert!(pvc.contains("Pending") && pvc.contains("fast"), "{pvc}");
    assert_eq!(headers("ingress"), "NAME CLASS HOSTS ADDRESS PORTS AGE");
    assert_eq!(headers("netpol"), "NAME POD-SELECTOR AGE");
    assert_eq!(
        headers("hpa"),
        "NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE"
    );
    assert_eq!(
        headers("sc"),
        "NAME PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE"
    );
    let hpa = ok(&["get", "hpa", "web", "-n", "kinds", "--no-headers"], None);
    assert!(hpa.contains("Deployment/web"), "{hpa}");
    for (kind, name) in [
        ("pvc", "data"),
        ("ingress", "web"),
        ("netpol", "deny"),
        ("hpa", "web"),
        ("sc", "fast"),
        ("rc", "rc"),
    ] {
        let described = ok(&["describe", kind, name, "-n", "kinds"], None);
        assert!(described.contains(name), "{described}");
    }
    ok(&["scale", "rc", "rc", "-n", "kinds", "--replicas=3"], None);
    let replicas = ok(
        &[
            "get",
            "rc",
            "rc",
            "-n",
            "kinds",
            "-o",
            "jsonpath={.spec.replicas}",
        ],
        None,
    );
    assert_eq!(replicas, "3");

    // A CertificateSigningRequest is approved through its approval subresource.
    let key = rcgen::KeyPair::generate().unwrap();
    let request = rcgen::CertificateParams::new(vec!["user".to_string()])
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    use base64::Engine;
    let csr = json!({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": "user"},
        "spec": {"request": base64::engine::general_purpose::STANDARD.encode(request),
                 "signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"]},
    });
    ok(&["create", "-f", "-"], Some(&csr.to_string()));
    ok(&["certificate", "approve", "user"], None);
    let condition = ok(
        &[
            "get",
            "csr",
            "user",
            "-o",
            "jsonpath={.status.conditions[0].type}",
        ],
        None,
    );
    assert_eq!(condition, "Approved");
    let csrs = ok(&["get", "csr"], None);
    assert!(csrs.contains("Approved"), "{csrs}");

    ok(
        &[
            "delete",
            "pvc,ingress,netpol,hpa,rc",
            "--all",
            "-n",
            "kinds",
        ],
        None,
    );
    ok(&["delete", "sc", "fast"], None);
    let left = ok(
        &[
            "get",
            "pvc,ingress,netpol,hpa,rc",
            "-n",
            "kinds",
            "-o",
            "name",
        ],
        None,
    );
    assert!(left.trim().is_empty(), "{left}");
    let o = server.kubectl(&["get", "sc", "fast"]).unwrap();
    assert!(
        !o.status.success() && output_text(&o).contains("NotFound"),
        "{}",
        output_text(&o)
    );
}

#[tokio::test]
async fn new_claims_and_ingresses_get_the_default_classes() {
    use k8s_openapi::api::{
        networking::v1::{Ingress, IngressClass},
        storage::v1::StorageClass,
    };
    let etcd = Etcd::start().unwrap();
    let server = ApiServer::start(&etcd).unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "classes").await;
    let classes: Api<StorageClass> = Api::all(client.clone());
    for (name, default) in [("slow", "false"), ("fast", "true")] {
        let sc: StorageClass = serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": {"storageclass.kubernetes.io/is-default-class": default}},
            "provisioner": "example.com/disk",
        }))
        .unwrap();
        classes.create(&PostParams::default(), &sc).await.unwrap();
    }
    let ingress_classes: Api<IngressClass> = Api::all(client.clone());
    let ic: IngressClass = serde_json::from_value(json!({
        "metadata": {"name": "nginx", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
        "spec": {"controller": "example.com/ingress"},
    }))
    .unwrap();
    ingress_classes
        .create(&PostParams::default(), &ic)
        .await
        .unwrap();
    // Admission reads the classes from the watch cache.
    for _ in 0..100 {
        let sc = classes
            .list(&ListParams::default().match_any())
            .await
            .unwrap();
        let ic = ingress_classes
            .list(&ListParams::default().match_any())
            .await
            .unwrap();
        if sc.items.len() == 2 && ic.items.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "classes");
    let claim = |name: &str, class: serde_json::Value| -> PersistentVolumeClaim {
        let mut spec = json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}});
        if !class.is_null() {
            spec["storageClassName"] = class;
        }
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
    };
    let defaulted = claims
        .create(&PostParams::default(), &claim("unnamed", json!(null)))
        .await
        .unwrap();
    assert_eq!(
        defaulted.spec.unwrap().storage_class_name.as_deref(),
        Some("fast")
    );
    let none = claims
        .create(&PostParams::default(), &claim("none", json!("")))
        .await
        .unwrap();
    assert_eq!(none.spec.unwrap().storage_class_name.as_deref(), Some(""));

    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), "classes");
    let ing: Ingress = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}},
    }))
    .unwrap();
    let created = ingresses
        .create(&PostParams::default(), &ing)
        .await
        .unwrap();
    assert_eq!(
        created.spec.unwrap().ingress_class_name.as_deref(),
        Some("nginx")
    );
}

#[tokio::test]
async fn pods_take_their_runtime_class_overhead_and_scheduling() {
    use k8s_openapi::api::node::v1::RuntimeClass;
    let etcd = Etcd::start().unwrap();
    let server = ApiServer::start(&etcd).unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "runtime").await;
    let classes: Api<RuntimeClass> = Api::all(client.clone());
    let class: RuntimeClass = serde_json::from_value(json!({
        "metadata": {"name": "sandboxed"},
        "handler": "runsc",
        "overhead": {"podFixed": {"cpu": "250m", "memory": "64Mi"}},
        "scheduling": {"nodeSelector": {"sandbox": "true"},
                       "tolerations": [{"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"}]},
    }))
    .unwrap();
    classes
        .create(&PostParams::default(), &class)
        .await
        .unwrap();
    for _ in 0..100 {
        if !classes
            .list(&ListParams::default().match_any())
            .await
            .unwrap()
            .items
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), "runtime");
    let pod = |name: &str, class: &str, extra: serde_json::Value| -> Pod {
        let mut spec =
            json!({"runtimeClassName": class, "containers": [{"name": "c", "image": "busybox:1"}]});
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
    };
    let created = pods
        .create(&PostParams::default(), &pod("p", "sandboxed", json!({})))
        .await
        .unwrap();
    let spec = created.spec.unwrap();
    let overhead = spec.overhead.unwrap();
    assert_eq!(
        (overhead["cpu"].0.as_str(), overhead["memory"].0.as_str()),
        ("250m", "64Mi")
    );
    assert_eq!(spec.node_selector.unwrap()["sandbox"], "true");
    assert!(spec
        .tolerations
        .unwrap()
        .iter()
        .any(|t| t.key.as_deref() == Some("sandbox")));

    let refused = |e: kube::Error| {
        let s = api_error(e);
        assert_eq!(s.code, 403, "{s:?}");
        s.message
    };
    let msg = refused(
        pods.create(&PostParams::default(), &pod("missing", "gvisor", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        msg,
        "pods \"missing\" is forbidden: pod rejected: RuntimeClass \"gvisor\" not found"
    );
    let msg = refused(
        pods.create(
            &PostParams::default(),
            &pod(
                "conflict",
                "sandboxed",
                json!({"nodeSelector": {"sandbox": "false"}}),
            ),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        msg,
        "pods \"conflict\" is forbidden: conflict: runtimeClass.scheduling.nodeSelector[sandbox] = true; pod.spec.nodeSelector[sandbox] = false"
    );
    let msg = refused(
        pods.create(
            &PostParams::default(),
            &pod("own", "sandboxed", json!({"overhead": {"cpu": "1"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        msg,
        "pods \"own\" is forbidden: pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"
    );
}

#[tokio::test]
async fn metadata_and_table_watches_convert_each_event() {
    let etcd = Etcd::start().unwrap();
    let server = ApiServer::start(&etcd).unwrap();
    let client = server.client().await.unwrap();
    namespace(&client, "meta").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "meta");

    // kube-rs's metadata watcher (`Api<PartialObjectMeta<K>>`) lists as
    // PartialObjectMetadataList, then watches as PartialObjectMetadata.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let metas: Api<kube::core::PartialObjectMeta<ConfigMap>> =
        Api::namespaced(client.clone(), "meta");
    let task = tokio::spawn(async move {
        let mut events = watcher(metas, watcher::Config::default()).boxed();
        while let Some(ev) = events.next().await {
            let describe = |m: kube::core::PartialObjectMeta<ConfigMap>| {
                let kind = m.types.map(|t| t.kind).unwrap_or_default();
                let v = m
                    .metadata
                    .labels
                    .unwrap_or_default()
                    .get("v")
                    .cloned()
                    .unwrap_or_default();
                format!("{kind} {} {v}", m.metadata.name.unwrap_or_default())
            };
            let line = match ev {
                Ok(watcher::Event::Apply(m)) => format!("APPLY {}", describe(m)),
                Ok(watcher::Event::Delete(m)) => format!("DELETE {}", describe(m)),
                Ok(watcher::Event::InitDone) => "INITDONE".to_string(),
                Ok(_) => continue,
                Err(e) => format!("ERROR {e}"),
            };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut lines = Vec::new();
    expect(&mut rx, &mut lines, "INITDONE").await;
    cms.create(&PostParams::default(), &cm("c1", json!({"v": "1"})))
        .await
        .unwrap();
    expect(&mut rx, &mut lines, "APPLY PartialObjectMetadata c1 1").await;
    cms.patch(
        "c1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"v": "2"}}})),
    )
    .await
    .unwrap();
    expect(&mut rx, &mut lines, "APPLY PartialObjectMetadata c1 2").await;
    cms.delete("c1", &DeleteParams::default()).await.unwrap();
    expect(&mut rx, &mut lines, "DELETE PartialObjectMetadata c1 2").await;
    task.abort();
    assert!(
        !lines.iter().any(|l| l.starts_with("ERROR")),
        "watcher errors: {lines:?}"
    );

    // The raw stream: metadata only, never the data.
    for name in ["a", "b"] {
        cms.create(&PostParams::default(), &cm(name, json!({})))
            .await
            .unwrap();
    }
    let path = "/api/v1/namespaces/meta/configmaps";
    let wp = kube::api::WatchParams::default().timeout(1);
    let raw = kube::core::Request::new(path)
        .watch_metadata(&wp, "0")
        .unwrap();
    let text = client.request_text(raw).await.unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{text}");
    for ev in &events {
        assert_eq!(ev["type"], "ADDED", "{text}");
        assert_eq!(ev["object"]["kind"], "PartialObjectMetadata", "{text}");
        assert_eq!(ev["object"]["apiVersion"], "meta.k8s.io/v1", "{text}");
        assert!(ev["object"].get("data").is_none(), "{text}");
        assert!(ev["object"]["metadata"]["resourceVersion"].is_string());
    }

    // `kubectl get -w`: one-row Tables, column definitions on the first only.
    let mut table = kube::core::Request::new(path).watch(&wp, "0").unwrap();
    table.headers_mut().insert(
        "accept",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
            .parse()
            .unwrap(),
    );
    let text = client.request_text(table).await.unwrap();
    let tables: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["object"].clone())
        .collect();
    assert_eq!(tables.len(), 2, "{text}");
    assert!(tables.iter().all(|t| t["kind"] == "Table"), "{text}");
    assert!(
        tables[0]["columnDefinitions"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{text}"
    );
    assert!(tables[1]["columnDefinitions"].is_null(), "{text}");
    let mut names: Vec<&str> = tables
        .iter()
        .filter_map(|t| t["rows"][0]["cells"][0].as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b"], "{text}");
    assert_eq!(
        tables[0]["rows"][0]["object"]["kind"],
        "PartialObjectMetadata"
    );
    // The real `kubectl get -w --watch-only` prints its header from the first watch event's
    // Table. ConfigMaps keep coming until it exits, so some land after its watch opened.
    let watched = std::thread::scope(|s| {
        let watch = s.spawn(|| {
            server.kubectl(&[
                "get",
                "cm",
                "-n",
                "meta",
                "-w",
                "--watch-only",
                "--output-watch-events",
                "--request-timeout=5s",
            ])
        });
        let mut i = 0;
        while !watch.is_finished() {
            let name = format!("c{i}");
            let created = server
                .kubectl(&[
                    "create",
                    "configmap",
                    &name,
                    "-n",
                    "meta",
                    "--from-literal=k=v",
                ])
                .unwrap();
            assert!(created.status.success(), "{}", output_text(&created));
            i += 1;
            std::thread::sleep(Duration::from_millis(300));
        }
        watch.join().unwrap().unwrap()
    });
    let out = String::from_utf8_lossy(&watched.stdout);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(lines.len() >= 2, "{}", output_text(&watched));
    assert_eq!(lines[0][..4], ["EVENT", "NAME", "DATA", "AGE"], "{out}");
    for row in &lines[1..] {
        assert!(
            row.len() == 4 && row[0] == "ADDED" && row[1].starts_with('c') && row[2] == "1",
            "{out}"
        );
    }

    // Conversions the apiserver cannot make are refused like upstream.
    let mut scale = kube::core::Request::new(path).watch(&wp, "0").unwrap();
    scale.headers_mut().insert(
        "accept",
        "application/json;as=Scale;g=autoscaling;v=v1"
            .parse()
            .unwrap(),
    );
    let status = api_error(client.request_text(scale).await.unwrap_err());
    assert_eq!(status.code, 406);
    assert_eq!(status.reason, "NotAcceptable");
    assert_eq!(
        status.message,
        "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"
    );
}

/// The daemons' client (component-base) negotiates HTTP/2 with the apiserver, as client-go
/// does, so a watch and concurrent requests share one connection; the stock kube-rs client
/// used by the other tests stays on HTTP/1.1.
#[tokio::test]
async fn daemon_client_speaks_http2_on_one_connection() {
    let etcd = Etcd::start().unwrap();
    let server = ApiServer::start(&etcd).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let daemon = component_base::client::from_kubeconfig(Some(&server.kubeconfig))
        .await
        .unwrap();
    let version = |client: Client| async move {
        let request = http::Request::get("/version")
            .body(kube::client::Body::empty())
            .unwrap();
        client.send(request).await.unwrap().version()
    };
    assert_eq!(version(daemon.clone()).await, http::Version::HTTP_2);

    // A watch stays open while 20 creates run at once: all on the one connection.
    let cms: Api<ConfigMap> = Api::namespaced(daemon.clone(), "default");
    let mut events = watcher(cms.clone(), watcher::Config::default()).boxed();
    let _ = events.next().await;
    futures::future::try_join_all((0..20).map(|i| {
        let cms = cms.clone();
        async move {
            cms.create(&PostParams::default(), &cm(&format!("h2-{i}"), json!({})))
                .await
        }
    }))
    .await
    .unwrap();
    assert_eq!(
        established_to(&server),
        1,
        "the watch and 20 concurrent creates share one connection"
    );

    assert_eq!(
        version(server.client().await.unwrap()).await,
        http::Version::HTTP_11
    );
}

/// Established TCP connections to the apiserver's port (each seen from the client side).
fn established_to(server: &ApiServer) -> usize {
    let port = server
        .url()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap();
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // remote address, then state: 01 is ESTABLISHED.
            f.get(2)
                .is_some_and(|r| r.ends_with(&format!(":{port:04X}")))
                && f.get(3) == Some(&"01")
        })
        .count()
}
