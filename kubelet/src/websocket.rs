//! WebSocket streaming protocols the runtime's streaming server does not speak, translated by
//! the kubelet (upstream's apiserver does this in its StreamTranslator and tunneling handler):
//! `v5.channel.k8s.io`, which kubectl 1.30+ uses for exec and attach, onto the runtime's
//! `v4.channel.k8s.io`; and port-forward tunnelled over WebSocket
//! (`SPDY/3.1+portforward.k8s.io`, kubectl 1.31+) onto the runtime's SPDY port-forward.

use axum::{
    body::Body,
    extract::Request,
    http::{header, HeaderValue, Method, StatusCode},
    response::Response,
};
use futures::{SinkExt, StreamExt};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::{
    tungstenite::{
        client::IntoClientRequest,
        handshake::derive_accept_key,
        protocol::{frame::coding::CloseCode, CloseFrame, Role},
        Message,
    },
    WebSocketStream,
};

use crate::streaming::{connect_runtime, runtime_target, upstream_error, StreamError};

/// The remote command protocol kubectl 1.30+ asks for; it adds a CLOSE signal to v4.
pub const V5: &str = "v5.channel.k8s.io";
/// The newest remote command protocol of the runtime's streaming server.
pub const V4: &str = "v4.channel.k8s.io";
/// Port-forward's SPDY session carried in WebSocket binary messages.
pub const PORT_FORWARD_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";
/// v5's CLOSE signal channel: the message names a stream the client closed.
const CLOSE_CHANNEL: u8 = 255;

/// The translated subprotocol a WebSocket upgrade asks for; `None` for everything the runtime
/// serves itself (SPDY, WebSocket v1–v4), which is proxied byte for byte. A v5 session with
/// piped stdin (`stdin` without a TTY) needs v5's end-of-stdin signal, which the runtime's v4
/// cannot carry: that upgrade is refused, and kubectl falls back to SPDY.
pub fn translated_protocol(
    req: &Request,
    piped_stdin: bool,
) -> Result<Option<&'static str>, StreamError> {
    let websocket = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !websocket {
        return Ok(None);
    }
    let offered: Vec<String> = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .collect();
    let offers = |p: &str| offered.iter().any(|o| o == p);
    if offers(V5) && !offers(V4) {
        if piped_stdin {
            return Err(StreamError::BadRequest(
                "closing stdin is not supported over WebSocket by this node; use SPDY".into(),
            ));
        }
        Ok(Some(V5))
    } else if offers(PORT_FORWARD_TUNNEL) {
        Ok(Some(PORT_FORWARD_TUNNEL))
    } else {
        Ok(None)
    }
}

/// The 101 answer accepting the client's WebSocket handshake with `protocol`.
fn accept(req: &Request, protocol: &'static str) -> Result<Response, StreamError> {
    let key = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| StreamError::BadRequest("missing Sec-WebSocket-Key".into()))?;
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        )
        .header(header::SEC_WEBSOCKET_PROTOCOL, protocol)
        .body(Body::empty())
        .map_err(|e| StreamError::Upstream(e.to_string()))
}

/// The client's side of an accepted WebSocket upgrade, once the connection is handed over.
async fn client_socket(
    upgrade: OnUpgrade,
    protocol: &'static str,
) -> Option<WebSocketStream<TokioIo<Upgraded>>> {
    match upgrade.await {
        Ok(c) => {
            tracing::info!(protocol, "serving a WebSocket stream");
            Some(WebSocketStream::from_raw_socket(TokioIo::new(c), Role::Server, None).await)
        }
        Err(err) => {
            tracing::debug!(%err, "upgrading the client connection");
            None
        }
    }
}

/// The close frame that ends a session normally: kubectl reads a close without a status
/// code (1005) as a broken stream and fails the command even after the exit status arrived.
fn normal_closure() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}

/// Serves a `v5.channel.k8s.io` exec or attach session over the runtime's v4 session at `url`.
/// v4 cannot close one stream, so v5's CLOSE signal (end of stdin) is not passed on.
pub async fn channel_v5(mut req: Request, url: &str) -> Result<Response, StreamError> {
    let response = accept(&req, V5)?;
    let (_, authority) = runtime_target(url)?;
    let tcp = tokio::net::TcpStream::connect(&authority)
        .await
        .map_err(upstream_error)?;
    let mut request = url
        .replacen("http://", "ws://", 1)
        .into_client_request()
        .map_err(upstream_error)?;
    request
        .headers_mut()
        .insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(V4));
    let (runtime, _) = tokio_tungstenite::client_async(request, tcp)
        .await
        .map_err(upstream_error)?;
    let client_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Some(client) = client_socket(client_upgrade, V5).await else {
            return;
        };
        let (mut client_tx, mut client_rx) = client.split();
        let (mut runtime_tx, mut runtime_rx) = runtime.split();
        let up = async {
            while let Some(Ok(msg)) = client_rx.next().await {
                match &msg {
                    Message::Binary(b) if b.first() == Some(&CLOSE_CHANNEL) => continue,
                    Message::Binary(_) | Message::Text(_) => {}
                    Message::Close(_) => break,
                    _ => continue,
                }
                if runtime_tx.send(msg).await.is_err() {
                    break;
                }
            }
            let _ = runtime_tx.close().await;
        };
        let down = async {
            while let Some(Ok(msg)) = runtime_rx.next().await {
                match &msg {
                    Message::Binary(_) | Message::Text(_) => {}
                    Message::Close(_) => break,
                    _ => continue,
                }
                if client_tx.send(msg).await.is_err() {
                    break;
                }
            }
            let _ = client_tx.send(normal_closure()).await;
        };
        tokio::select! {
            () = up => {}
            () = down => {}
        }
    });
    Ok(response)
}

/// Serves port-forward tunnelled over WebSocket: the client's SPDY session travels in binary
/// messages, and is spliced onto a SPDY upgrade of the runtime's port-forward URL.
pub async fn port_forward_tunnel(mut req: Request, url: &str) -> Result<Response, StreamError> {
    let response = accept(&req, PORT_FORWARD_TUNNEL)?;
    let (target, authority) = runtime_target(url)?;
    let mut sender = connect_runtime(&authority).await?;
    let path = target
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_else(|| "/".into());
    let spdy = hyper::Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::HOST, &authority)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "SPDY/3.1")
        .header("X-Stream-Protocol-Version", "portforward.k8s.io")
        .body(Body::empty())
        .map_err(upstream_error)?;
    let mut answer = sender.send_request(spdy).await.map_err(upstream_error)?;
    if answer.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(StreamError::Upstream(format!(
            "the runtime refused the port-forward upgrade: {}",
            answer.status()
        )));
    }
    let runtime = hyper::upgrade::on(&mut answer)
        .await
        .map_err(upstream_error)?;
    let client_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Some(client) = client_socket(client_upgrade, PORT_FORWARD_TUNNEL).await else {
            return;
        };
        let (mut client_tx, mut client_rx) = client.split();
        let (mut runtime_rx, mut runtime_tx) = tokio::io::split(TokioIo::new(runtime));
        let up = async {
            while let Some(Ok(msg)) = client_rx.next().await {
                let data = match msg {
                    Message::Binary(b) => b,
                    Message::Close(_) => break,
                    _ => continue,
                };
                if runtime_tx.write_all(&data).await.is_err() {
                    break;
                }
            }
            let _ = runtime_tx.shutdown().await;
        };
        let down = async {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match runtime_rx.read(&mut buf).await {
                    Ok(n) if n > 0 => {
                        let chunk = Message::Binary(buf[..n].to_vec().into());
                        if client_tx.send(chunk).await.is_err() {
                            break;
                        }
                    }
                    _ => break,
                }
            }
            let _ = client_tx.send(normal_closure()).await;
        };
        tokio::select! {
            () = up => {}
            () = down => {}
        }
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade(protocols: &str) -> Request {
        Request::builder()
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_PROTOCOL, protocols)
            .body(Body::empty())
            .unwrap()
    }

    #[test]
    fn only_protocols_the_runtime_lacks_are_translated() {
        let t = |req: Request, piped: bool| translated_protocol(&req, piped).ok().flatten();
        assert_eq!(t(upgrade(V5), false), Some(V5));
        assert!(translated_protocol(&upgrade(V5), true).is_err());
        assert_eq!(
            t(upgrade("v5.channel.k8s.io, v4.channel.k8s.io"), false),
            None
        );
        assert_eq!(t(upgrade(V4), false), None);
        assert_eq!(
            t(upgrade(PORT_FORWARD_TUNNEL), false),
            Some(PORT_FORWARD_TUNNEL)
        );
        let spdy = Request::builder()
            .header(header::UPGRADE, "SPDY/3.1")
            .body(Body::empty())
            .unwrap();
        assert_eq!(t(spdy, true), None);
    }
}
