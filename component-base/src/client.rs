//! The API client every daemon uses: built from `--kubeconfig` (or in-cluster configuration),
//! as upstream components load theirs.
//!
//! Like client-go, the client speaks HTTP/2 when the apiserver offers it, so a daemon's watches
//! and requests share one TLS connection instead of opening one per request in flight (the
//! stock kube-rs client is HTTP/1.1 only: a scheduler binding 32 pods at once held ~90 sockets
//! and their buffers). Idle connections are pinged as client-go does, so a watch on a dead
//! connection fails over instead of hanging.

use std::{path::Path, time::Duration};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_timeout::TimeoutConnector;
use hyper_util::{
    client::legacy::connect::HttpConnector,
    rt::{TokioExecutor, TokioTimer},
};
use kube::{
    client::{retry::RetryPolicy, Body, ClientBuilder, ConfigExt},
    config::{KubeConfigOptions, Kubeconfig},
};
use tower::{retry::RetryLayer, util::BoxService, BoxError, ServiceBuilder};

/// How often an idle HTTP/2 connection is pinged, and how long the answer may take
/// (client-go's ReadIdleTimeout and PingTimeout).
const HTTP2_PING_INTERVAL: Duration = Duration::from_secs(30);
const HTTP2_PING_TIMEOUT: Duration = Duration::from_secs(15);
/// HTTP/2 flow-control windows, as Go's transport sets them: each stream may have 4 MiB in
/// flight, and the connection's window is large enough that a watch whose reader falls behind
/// stalls only itself, never the other watches and requests on the connection.
const HTTP2_STREAM_WINDOW: u32 = 4 << 20;
const HTTP2_CONNECTION_WINDOW: u32 = 1 << 30;

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
    build(&config)
}

/// A client for `config` on a connection pool of its own.
pub fn build(config: &kube::Config) -> Result<kube::Client, ClientError> {
    Ok(Transport::new(config)?.builder()?.build())
}

/// The request stack a [`Transport`] hands out, ready for further layers.
pub type ClientService = BoxService<Request<Body>, Response<Incoming>, BoxError>;

type Pool =
    hyper_util::client::legacy::Client<TimeoutConnector<HttpsConnector<HttpConnector>>, Body>;

/// Connections to one apiserver with one TLS identity, negotiating HTTP/2 by ALPN; clients
/// built from it share them (as client-go shares a transport between clients of one config).
#[derive(Clone)]
pub struct Transport {
    pool: Pool,
    config: kube::Config,
}

impl Transport {
    pub fn new(config: &kube::Config) -> Result<Transport, ClientError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config.rustls_client_config().map_err(build_error)?)
            .https_or_http();
        let tls = match &config.tls_server_name {
            Some(name) => {
                let server_name = name
                    .clone()
                    .try_into()
                    .map_err(|e| ClientError::Build(format!("tls-server-name {name:?}: {e}")))?;
                tls.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(
                    server_name,
                ))
            }
            None => tls,
        };
        let mut connector = TimeoutConnector::new(tls.enable_all_versions().wrap_connector(http));
        connector.set_connect_timeout(config.connect_timeout);
        connector.set_read_timeout(config.read_timeout);
        connector.set_write_timeout(config.write_timeout);
        connector.set_reset_reader_on_write(config.reset_reader_on_write);
        let pool = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .http2_keep_alive_interval(HTTP2_PING_INTERVAL)
            .http2_keep_alive_timeout(HTTP2_PING_TIMEOUT)
            .http2_keep_alive_while_idle(true)
            .http2_initial_stream_window_size(HTTP2_STREAM_WINDOW)
            .http2_initial_connection_window_size(HTTP2_CONNECTION_WINDOW)
            .build(connector);
        Ok(Transport {
            pool,
            config: config.clone(),
        })
    }

    /// kube-rs's request stack over the shared connections: base URL, retries of
    /// 429/503/504, the configuration's credentials and extra headers.
    pub fn builder(&self) -> Result<ClientBuilder<ClientService>, ClientError> {
        let config = &self.config;
        let service = ServiceBuilder::new()
            .layer(config.base_uri_layer())
            .option_layer(
                config
                    .default_retry
                    .then(|| RetryLayer::new(RetryPolicy::server_retry())),
            )
            .option_layer(config.auth_layer().map_err(build_error)?)
            .layer(config.extra_headers_layer().map_err(build_error)?)
            .map_err(BoxError::from)
            .service(self.pool.clone());
        Ok(ClientBuilder::new(
            BoxService::new(service),
            config.default_namespace.clone(),
        ))
    }
}

fn build_error(e: kube::Error) -> ClientError {
    ClientError::Build(e.to_string())
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
