//! The controller-manager benchmark: seconds from creating 100 Deployments of 10 replicas to
//! all 1 000 pods existing, against the real apiserver, etcd and kube-controller-manager.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use futures::{stream, StreamExt, TryStreamExt};
use integration_tests::{binary, free_port, ApiServer, Etcd, Process};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

/// The size of the run.
#[derive(clap::Args)]
pub struct Args {
    /// Deployments created.
    #[arg(long, default_value_t = 100)]
    deployments: usize,
    /// Replicas of each Deployment.
    #[arg(long, default_value_t = 10)]
    replicas: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let etcd = Etcd::start()?;
    let server = ApiServer::start(&etcd)?;
    let client = server.client().await?;
    let log_dir = tempfile::tempdir()?;
    let mut cm = Command::new(binary("kube-controller-manager"));
    cm.arg("--kubeconfig")
        .arg(&server.kubeconfig)
        .arg(format!("--secure-port={}", free_port()))
        .arg("--leader-elect=false");
    let _cm = Process::spawn(cm, log_dir.path().join("controller-manager.log"))?;

    let want = args.deployments * args.replicas;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let start = Instant::now();
    stream::iter(0..args.deployments)
        .map(|i| {
            let deployments = deployments.clone();
            let replicas = args.replicas;
            async move {
                let d: Deployment = serde_json::from_value(json!({
                    "metadata": {"name": format!("d{i}")},
                    "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": format!("d{i}")}},
                        "template": {"metadata": {"labels": {"app": format!("d{i}")}},
                            "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}},
                }))?;
                deployments.create(&PostParams::default(), &d).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<_>>()
        .await?;
    let created = start.elapsed();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let mut count = 0;
    while start.elapsed() < Duration::from_secs(300) {
        count = pods
            .list(&ListParams::default().match_any())
            .await?
            .items
            .len();
        if count >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("ferrokube controller-manager benchmark");
    println!(
        "{:<44} {:>9.2} s   ({count}/{want} pods; the creates themselves took {:.2} s)",
        format!(
            "{} Deployments x {} replicas to all pods",
            args.deployments, args.replicas
        ),
        start.elapsed().as_secs_f64(),
        created.as_secs_f64()
    );
    Ok(())
}
