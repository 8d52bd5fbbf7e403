//! `/exec`, `/attach` and `/portforward` on the node API: the kubelet asks the runtime for a
//! streaming URL (CRI Exec, Attach, PortForward) and proxies the client's upgraded connection
//! (WebSocket `channel.k8s.io` protocols or SPDY) to the runtime's streaming server, byte for byte,
//! or through [`crate::websocket`] for the WebSocket protocols the runtime does not speak.

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use cri_proto::v1::{AttachRequest, ExecRequest, PortForwardRequest};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::{runtime_pod::RuntimePod, server::ServerState};

/// Why a streaming request could not be proxied.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Runtime(#[from] crate::cri::CriError),
    #[error("runtime streaming server: {0}")]
    Upstream(String),
}

impl IntoResponse for StreamError {
    fn into_response(self) -> Response {
        let status = match &self {
            StreamError::NotFound(_) => StatusCode::NOT_FOUND,
            StreamError::BadRequest(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, self.to_string()).into_response()
    }
}

/// The query of an exec or attach request: repeated `command`, and the stream flags.
#[derive(Debug, Default, PartialEq)]
pub struct StreamOptions {
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
    pub ports: Vec<i32>,
}

pub fn parse_query(query: &str) -> StreamOptions {
    let mut opts = StreamOptions::default();
    let truthy = |v: &str| matches!(v, "1" | "true" | "True");
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "command" => opts.command.push(v.into_owned()),
            "stdin" | "input" => opts.stdin = truthy(&v),
            "stdout" | "output" => opts.stdout = truthy(&v),
            "stderr" | "error" => opts.stderr = truthy(&v),
            "tty" => opts.tty = truthy(&v),
            "port" => opts
                .ports
                .extend(v.split(',').filter_map(|p| p.parse::<i32>().ok())),
            _ => {}
        }
    }
    opts
}

/// The path segments after the verb: namespace, pod, then (optionally a UID and) the container.
fn segments(uri: &Uri) -> Vec<String> {
    uri.path()
        .split('/')
        .filter(|s| !s.is_empty())
        .skip(1)
        .map(percent_decode)
        .collect()
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

async fn find_pod(
    state: &ServerState,
    namespace: &str,
    name: &str,
) -> Result<(String, RuntimePod), StreamError> {
    let uid = state
        .workers
        .pods()
        .into_iter()
        .find(|p| {
            p.metadata.namespace.as_deref() == Some(namespace)
                && p.metadata.name.as_deref() == Some(name)
        })
        .and_then(|p| p.metadata.uid)
        .ok_or_else(|| StreamError::NotFound(format!("pod {namespace}/{name} not found")))?;
    let runtime = RuntimePod::load(&state.runtime, &uid).await?;
    Ok((uid, runtime))
}

/// Handles `/exec/...`, `/attach/...` and `/portforward/...`.
pub async fn handle(State(state): State<ServerState>, req: Request) -> Response {
    match stream(state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn stream(state: ServerState, req: Request) -> Result<Response, StreamError> {
    let verb = req
        .uri()
        .path()
        .split('/')
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let parts = segments(req.uri());
    let opts = parse_query(req.uri().query().unwrap_or_default());
    let (namespace, pod) = match parts.as_slice() {
        [ns, pod, ..] => (ns.clone(), pod.clone()),
        _ => {
            return Err(StreamError::BadRequest(
                "want /<verb>/<namespace>/<pod>[/<container>]".into(),
            ))
        }
    };
    let (_, runtime_pod) = find_pod(&state, &namespace, &pod).await?;
    let url = if verb == "portforward" {
        let sandbox = runtime_pod.ready_sandbox().ok_or_else(|| {
            StreamError::NotFound(format!("pod {namespace}/{pod} has no running sandbox"))
        })?;
        state
            .runtime
            .port_forward(PortForwardRequest {
                pod_sandbox_id: sandbox.id.clone(),
                port: opts.ports.clone(),
            })
            .await?
    } else {
        let container = parts
            .last()
            .filter(|_| parts.len() >= 3)
            .cloned()
            .ok_or_else(|| StreamError::BadRequest("missing container name".into()))?;
        let instance = runtime_pod
            .latest(&container)
            .filter(|c| crate::runtime_pod::is_running(c))
            .ok_or_else(|| {
                StreamError::BadRequest(format!("container {container} is not running"))
            })?;
        if verb == "exec" {
            if opts.command.is_empty() {
                return Err(StreamError::BadRequest(
                    "you must specify at least 1 command".into(),
                ));
            }
            let request = ExecRequest {
                container_id: instance.id.clone(),
                cmd: opts.command.clone(),
                tty: opts.tty,
                stdin: opts.stdin,
                stdout: opts.stdout,
                stderr: opts.stderr && !opts.tty,
            };
            state.runtime.exec(request).await?
        } else {
            let request = AttachRequest {
                container_id: instance.id.clone(),
                stdin: opts.stdin,
                tty: opts.tty,
                stdout: opts.stdout,
                stderr: opts.stderr && !opts.tty,
            };
            state.runtime.attach(request).await?
        }
    };
    let piped_stdin = opts.stdin && !opts.tty && verb != "portforward";
    match crate::websocket::translated_protocol(&req, piped_stdin)? {
        Some(crate::websocket::V5) => crate::websocket::channel_v5(req, &url).await,
        Some(_) => crate::websocket::port_forward_tunnel(req, &url).await,
        None => proxy(req, &url).await,
    }
}

/// A runtime streaming URL and its `host:port`.
pub(crate) fn runtime_target(url: &str) -> Result<(Uri, String), StreamError> {
    let target: Uri = url
        .parse()
        .map_err(|e| StreamError::Upstream(format!("bad URL {url:?}: {e}")))?;
    let authority = target
        .authority()
        .map(|a| a.to_string())
        .ok_or_else(|| StreamError::Upstream(format!("URL without host: {url}")))?;
    Ok((target, authority))
}

pub(crate) fn upstream_error(e: impl std::fmt::Display) -> StreamError {
    StreamError::Upstream(e.to_string())
}

/// An HTTP/1 connection to the runtime's streaming server whose requests may be upgraded.
pub(crate) async fn connect_runtime(authority: &str) -> Result<SendRequest<Body>, StreamError> {
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(upstream_error)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(upstream_error)?;
    tokio::spawn(async move {
        if let Err(err) = conn.with_upgrades().await {
            tracing::debug!(%err, "streaming connection ended");
        }
    });
    Ok(sender)
}

/// Sends the client's request to `url` and, on 101 Switching Protocols, splices the two
/// upgraded connections together.
async fn proxy(mut req: Request, url: &str) -> Result<Response, StreamError> {
    let (target, authority) = runtime_target(url)?;
    let mut sender = connect_runtime(&authority).await?;
    // The runtime's URL carries its own token; the client's query (e.g. port-forward's `port`
    // list for WebSocket clients) rides along when the URL has none.
    let path = match (target.query(), req.uri().query()) {
        (None, Some(q)) => format!("{}?{q}", target.path()),
        _ => target
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "/".into()),
    };
    let mut upstream = hyper::Request::builder()
        .method(req.method().clone())
        .uri(path);
    for (name, value) in req.headers() {
        if name != header::HOST {
            upstream = upstream.header(name, value);
        }
    }
    let upstream = upstream
        .header(header::HOST, authority)
        .body(Body::empty())
        .map_err(upstream_error)?;
    let client_upgrade = hyper::upgrade::on(&mut req);
    let mut response = sender
        .send_request(upstream)
        .await
        .map_err(upstream_error)?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let (parts, body) = response.into_parts();
        return Ok(Response::from_parts(parts, Body::new(body)));
    }
    let runtime_upgrade = hyper::upgrade::on(&mut response);
    tokio::spawn(async move {
        let (client, runtime) = match tokio::try_join!(client_upgrade, runtime_upgrade) {
            Ok(pair) => pair,
            Err(err) => {
                tracing::debug!(%err, "upgrading streaming connection");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut runtime = TokioIo::new(runtime);
        if let Err(err) = tokio::io::copy_bidirectional(&mut client, &mut runtime).await {
            tracing::debug!(%err, "streaming session ended");
        }
    });
    let (parts, _) = response.into_parts();
    Ok(Response::from_parts(parts, Body::empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exec_queries() {
        let o =
            parse_query("command=cat&command=%2Fetc%2Fresolv.conf&stdout=true&stderr=1&tty=false");
        assert_eq!(o.command, vec!["cat", "/etc/resolv.conf"]);
        assert!(o.stdout && o.stderr && !o.stdin && !o.tty);
        assert_eq!(parse_query("port=80,8080&port=9").ports, vec![80, 8080, 9]);
        assert_eq!(
            segments(&"/exec/ns/p%20x/c".parse().unwrap()),
            vec!["ns", "p x", "c"]
        );
    }
}
