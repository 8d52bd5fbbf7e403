//! The apiserver benchmark: ConfigMap creates and gets from 1 and 8 clients, LIST of 10 000
//! pods and of 1 000 pods in one namespace (from the watch cache and consistent), 1 000
//! concurrent watchers receiving one update, and the apiserver's memory idle and with 5 000
//! pods when the benchmark started it.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{stream, StreamExt, TryStreamExt};
use integration_tests::{ApiServer, Etcd};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::{
    api::{Api, ListParams, Patch, PatchParams, PostParams, WatchParams},
    Client,
};
use serde_json::json;

use crate::stats::{ms, percentile, report};

/// Where to find the apiserver.
#[derive(clap::Args)]
pub struct Args {
    /// kubeconfig of the apiserver to measure; without it, the benchmark starts etcd and the
    /// release kube-apiserver itself.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Number of ConfigMaps created per create phase.
    #[arg(long, default_value_t = 2000)]
    creates: usize,
    /// Pods created for the LIST phase.
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// Concurrent watchers.
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
}

fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "bench", "shard": format!("{}", name.len() % 4)}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1", "command": ["sleep", "3600"],
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
    }))
    .unwrap_or_default()
}

async fn ensure_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Runs `count` operations with `clients` concurrent workers; returns latencies and wall time.
async fn run_concurrent<F, Fut>(
    count: usize,
    clients: usize,
    op: F,
) -> anyhow::Result<(Vec<Duration>, Duration)>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let samples: Vec<Duration> = stream::iter(0..count)
        .map(|i| {
            let op = op.clone();
            async move {
                let t = Instant::now();
                op(i).await.map(|_| t.elapsed())
            }
        })
        .buffer_unordered(clients)
        .try_collect()
        .await?;
    Ok((samples, start.elapsed()))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    // Keep a locally started cluster alive for the whole run.
    let mut local: Option<(Etcd, ApiServer)> = None;
    let client = match &args.kubeconfig {
        Some(path) => component_client(path).await?,
        None => {
            let etcd = Etcd::start_cluster(1)?;
            let server = ApiServer::start(&etcd)?;
            let client = server.client().await?;
            local = Some((etcd, server));
            client
        }
    };
    let pid = local.as_ref().and_then(|(_, s)| s.process_id());
    println!(
        "ferrokube apiserver benchmark (2-core figures for upstream kube-apiserver in parentheses)"
    );
    if let Some(pid) = pid {
        tokio::time::sleep(Duration::from_secs(2)).await;
        if let Some(rss) = rss_mib(pid) {
            println!(
                "{:<44} {rss:>9.1} MiB   (upstream ~310 MiB: {:.2}x)",
                "RSS idle",
                rss / 310.0
            );
        }
    }
    let ns = format!("bench-{}", std::process::id());
    ensure_namespace(&client, &ns).await?;

    for clients in [1usize, 8] {
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
        let prefix = format!("c{clients}-");
        let (samples, wall) = run_concurrent(args.creates, clients, {
            let cms = cms.clone();
            let prefix = prefix.clone();
            move |i| {
                let cms = cms.clone();
                let name = format!("{prefix}{i}");
                async move {
                    let cm: ConfigMap = serde_json::from_value(
                        json!({"metadata": {"name": name}, "data": {"k": "v"}}),
                    )?;
                    cms.create(&PostParams::default(), &cm).await?;
                    Ok(())
                }
            }
        })
        .await?;
        let baseline = (clients == 1).then_some(("520-730 creates/s", 625.0));
        report(
            &format!("ConfigMap create, {clients} client(s)"),
            samples,
            wall,
            baseline,
        );
        let (samples, wall) = run_concurrent(args.creates, clients, {
            let cms = cms.clone();
            move |i| {
                let cms = cms.clone();
                let name = format!("{prefix}{i}");
                async move {
                    cms.get(&name).await?;
                    Ok(())
                }
            }
        })
        .await?;
        report(
            &format!("ConfigMap get, {clients} client(s)"),
            samples,
            wall,
            None,
        );
    }

    // Pods: 1 000 in one namespace, the rest spread over a second.
    let small = format!("{ns}-1k");
    let big = format!("{ns}-rest");
    ensure_namespace(&client, &small).await?;
    ensure_namespace(&client, &big).await?;
    let total = args.pods.max(1000);
    let (_, wall) = run_concurrent(total, 16, {
        let client = client.clone();
        let (small, big) = (small.clone(), big.clone());
        move |i| {
            let ns = if i < 1000 { small.clone() } else { big.clone() };
            let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
            async move {
                pods.create(&PostParams::default(), &pod(&format!("p-{i}")))
                    .await?;
                Ok(())
            }
        }
    })
    .await?;
    println!(
        "{:<44} {:>9.0} pods/s (16 clients)",
        format!("created {total} pods"),
        total as f64 / wall.as_secs_f64()
    );
    if let Some(pid) = pid {
        if let Some(rss) = rss_mib(pid) {
            println!(
                "{:<44} {rss:>9.1} MiB   (upstream ~450 MiB with 5 000 pods: {:.2}x)",
                format!("RSS with {total} pods"),
                rss / 450.0
            );
        }
    }
    for (label, ns_name, from_cache, expected) in [
        (
            "LIST 1 000 pods, one namespace, cache (rv=0)",
            small.as_str(),
            true,
            1000usize,
        ),
        (
            "LIST 1 000 pods, one namespace, consistent",
            small.as_str(),
            false,
            1000,
        ),
        ("LIST all pods, cache (rv=0)", "", true, total),
        ("LIST all pods, consistent", "", false, total),
    ] {
        let pods: Api<Pod> = if ns_name.is_empty() {
            Api::all(client.clone())
        } else {
            Api::namespaced(client.clone(), ns_name)
        };
        let mut samples = Vec::new();
        for _ in 0..10 {
            let lp = if from_cache {
                ListParams::default().match_any()
            } else {
                ListParams::default()
            };
            let t = Instant::now();
            let list = pods.list(&lp).await?;
            samples.push(t.elapsed());
            if list.items.len() < expected {
                anyhow::bail!("{label}: listed {} of {expected} pods", list.items.len());
            }
        }
        samples.sort();
        let p50 = percentile(&samples, 50.0);
        let mut line = format!(
            "{label:<44} p50 {:>7.2} ms   p99 {:>7.2} ms",
            ms(p50),
            ms(percentile(&samples, 99.0))
        );
        if expected == 1000 {
            line.push_str(&format!(
                "   (upstream 13 ms from cache: {:.2}x)",
                ms(p50) / 13.0
            ));
        }
        println!("{line}");
    }

    // Watchers: all watch one namespace; one update must reach every one of them.
    let wns = format!("{ns}-watch");
    ensure_namespace(&client, &wns).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &wns);
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "target"}, "data": {"k": "0"}}))?;
    let created = cms.create(&PostParams::default(), &cm).await?;
    let rv = created.metadata.resource_version.unwrap_or_default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let mut tasks = Vec::new();
    for _ in 0..args.watchers {
        let cms = cms.clone();
        let rv = rv.clone();
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(stream) = cms.watch(&WatchParams::default().timeout(120), &rv).await else {
                return;
            };
            let mut stream = stream.boxed();
            while let Ok(Some(ev)) = stream.try_next().await {
                if matches!(ev, kube::api::WatchEvent::Modified(_)) {
                    let _ = tx.send(Instant::now());
                    return;
                }
            }
        }));
    }
    drop(tx);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sent = Instant::now();
    cms.patch(
        "target",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "1"}})),
    )
    .await?;
    let mut delays = Vec::new();
    while delays.len() < args.watchers {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some(at)) => delays.push(at.duration_since(sent)),
            _ => break,
        }
    }
    delays.sort();
    println!(
        "{:<44} {:>5}/{} received   p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
        format!("{} watchers, one update", args.watchers),
        delays.len(),
        args.watchers,
        ms(percentile(&delays, 50.0)),
        ms(percentile(&delays, 99.0)),
        ms(delays.last().copied().unwrap_or_default())
    );
    for t in tasks {
        t.abort();
    }
    drop(local);
    Ok(())
}

async fn component_client(path: &std::path::Path) -> anyhow::Result<Client> {
    let kc = kube::config::Kubeconfig::read_from(path)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    Ok(Client::try_from(config)?)
}
