//! The HTTP(S) serving loop shared by every daemon's secure port: HTTP/1.1 and HTTP/2 (ALPN over
//! TLS, prior knowledge in clear text), connection upgrades for streaming, the peer address in
//! each request's extensions, and graceful shutdown that lets open requests finish.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{extract::Request, Router};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::{conn::auto::Builder, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// The address of the client a request came from, inserted into every request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// The certificate chain a TLS client presented (leaf first), already verified against the
/// server's client CA; inserted into the extensions of every request on that connection.
#[derive(Debug, Clone)]
pub struct PeerCertificates(pub Arc<Vec<CertificateDer<'static>>>);

/// Serves `router` on `listener` until `shutdown` completes, then waits up to `grace` for open
/// connections to finish. With `tls`, every connection is a TLS connection.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http2().max_concurrent_streams(1000);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(err) => {
                    tracing::warn!(%err, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = move |certs: Option<PeerCertificates>| {
            TowerToHyperService::new(router.map_request(move |mut req: Request<_>| {
                req.extensions_mut().insert(PeerAddr(peer));
                if let Some(certs) = &certs {
                    req.extensions_mut().insert(certs.clone());
                }
                req
            }))
        };
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let result = match acceptor {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls) => {
                        let certs = tls
                            .get_ref()
                            .1
                            .peer_certificates()
                            .filter(|c| !c.is_empty())
                            .map(|c| PeerCertificates(Arc::new(c.to_vec())));
                        let conn = builder
                            .serve_connection_with_upgrades(TokioIo::new(tls), service(certs))
                            .into_owned();
                        watcher.watch(conn).await
                    }
                    Err(err) => {
                        tracing::debug!(%err, %peer, "TLS handshake failed");
                        return;
                    }
                },
                None => {
                    let conn = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service(None))
                        .into_owned();
                    watcher.watch(conn).await
                }
            };
            if let Err(err) = result {
                tracing::debug!(%err, %peer, "connection ended with an error");
            }
        });
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => tracing::info!("grace period over; closing open connections"),
    }
}
