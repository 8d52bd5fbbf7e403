//! The API client every daemon uses: built from `--kubeconfig` (or in-cluster configuration),
//! as upstream components load theirs.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("reading kubeconfig {path}: {message}")]
    Kubeconfig { path: String, message: String },
    #[error("no --kubeconfig given and no in-cluster configuration: {0}")]
    Infer(String),
    #[error("building the client: {0}")]
    Build(String),
}

/// A client for the apiserver named by `kubeconfig`, or the in-cluster/default configuration.
pub async fn from_kubeconfig(kubeconfig: Option<&Path>) -> Result<kube::Client, ClientError> {
    let config = config_from_kubeconfig(kubeconfig).await?;
    kube::Client::try_from(config).map_err(|e| ClientError::Build(e.to_string()))
}

/// The client configuration `from_kubeconfig` builds on, for callers that derive further
/// clients from it (e.g. with other credentials).
pub async fn config_from_kubeconfig(
    kubeconfig: Option<&Path>,
) -> Result<kube::Config, ClientError> {
    Ok(match kubeconfig {
        Some(path) => {
            let err = |message: String| ClientError::Kubeconfig {
                path: path.display().to_string(),
                message,
            };
            let file = Kubeconfig::read_from(path).map_err(|e| err(e.to_string()))?;
            kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(|e| err(e.to_string()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| ClientError::Infer(e.to_string()))?,
    })
}
