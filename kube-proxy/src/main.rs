//! kube-proxy: wiring only.

use anyhow::Context;
use clap::Parser;
use kube_proxy::{options::Options, server};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = Options::parse();
    component_base::logging::init(opts.verbosity, component_base::logging::Format::Text);
    let _ = rustls::crypto::ring::default_provider().install_default();
    if opts.cleanup {
        server::cleanup().await.context("cleaning up")?;
        tracing::info!("removed kube-proxy's rules, tables and interface addresses");
        return Ok(());
    }
    let cfg = opts.configuration().context("loading the configuration")?;
    let client = component_base::client::from_kubeconfig(cfg.kubeconfig.as_deref())
        .await
        .context("building the API client")?;
    server::run(cfg, client, component_base::signals::shutdown_signal()).await?;
    Ok(())
}
