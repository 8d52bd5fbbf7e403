//! kube-apiserver: wiring only.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = apiserver::options::Options::parse();
    component_base::logging::init(options.verbosity, options.logging_format);
    apiserver::server::run(options).await
}
