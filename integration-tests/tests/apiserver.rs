//! kube-apiserver end to end: real etcd, the real binary, kube-rs and the real kubectl.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use integration_tests::{output_text, ApiServer, Etcd};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
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
