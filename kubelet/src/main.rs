//! kubelet: wiring only.

use anyhow::Context;
use clap::Parser;
use kubelet::{
    cri::Runtime,
    host,
    kubelet::{run, KubeletDeps},
    options::Options,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = Options::parse();
    component_base::logging::init(opts.verbosity, opts.logging_format);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = opts.configuration()?;
    let node_name = opts
        .hostname_override
        .clone()
        .map(|n| n.to_lowercase())
        .unwrap_or_else(host::hostname);
    let client = match &opts.kubeconfig {
        Some(path) => Some(component_base::client::from_kubeconfig(Some(path)).await?),
        None => None,
    };
    let runtime = Runtime::connect(&config.container_runtime_endpoint)?;
    let cert_dir = opts
        .cert_dir
        .clone()
        .unwrap_or_else(|| opts.root_dir.join("pki"));
    let deps = KubeletDeps {
        client,
        runtime,
        config,
        node_name,
        node_ip: opts.node_ip,
        root_dir: opts.root_dir.clone(),
        extra_labels: opts.node_labels()?,
        cert_dir,
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        component_base::signals::shutdown_signal().await;
        let _ = tx.send(true);
    });
    run(deps, rx).await.context("running the kubelet")
}
