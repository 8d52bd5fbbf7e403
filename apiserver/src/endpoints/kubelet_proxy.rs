//! The pod subresources served by the kubelet — `log`, `exec`, `attach`, `portforward` — proxied
//! to the kubelet of the pod's node, as upstream's apiserver does: plain responses are
//! streamed back, and upgraded connections (SPDY or WebSocket) are spliced byte for byte.

use std::sync::Arc;

use axum::{
    body::Body,
    extract::Request,
    http::{header, HeaderValue, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use hyper_util::rt::TokioIo;
use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    pki_types::{CertificateDer, ServerName, UnixTime},
    DigitallySignedStruct, SignatureScheme,
};
use serde_json::Value;

use crate::{
    errors::{ApiError, ApiResult},
    registry::{catalog, meta, Store},
    server::ApiServer,
};

/// The subresources the kubelet serves.
pub const SUBRESOURCES: &[&str] = &["log", "exec", "attach", "portforward"];

/// Accepts the kubelet's self-signed serving certificate, as upstream does when no
/// `--kubelet-certificate-authority` is given.
#[derive(Debug)]
struct AnyKubeletCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyKubeletCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// TLS to kubelets as `--kubelet-client-certificate`/`--kubelet-client-key` (kubelets
/// authenticate the apiserver by it), verifying kubelets against
/// `--kubelet-certificate-authority` when given.
pub fn tls_connector(
    options: &crate::options::Options,
) -> Result<tokio_rustls::TlsConnector, component_base::tls::TlsError> {
    use component_base::tls::{load_certs, load_key};
    let provider = component_base::tls::provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &options.kubelet_certificate_authority {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in load_certs(ca)? {
                roots.add(cert)?;
            }
            builder.with_root_certificates(roots)
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyKubeletCertificate(provider))),
    };
    let config = match (
        &options.kubelet_client_certificate,
        &options.kubelet_client_key,
    ) {
        (Some(cert), Some(key)) => {
            builder.with_client_auth_cert(load_certs(cert)?, load_key(key)?)?
        }
        // The flags require each other.
        _ => builder.with_no_client_auth(),
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// The kubelet's address and port for a node.
fn kubelet_address(node: &Value) -> Option<(String, i64)> {
    let addresses = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)?;
    let pick = |kind: &str| {
        addresses
            .iter()
            .find(|a| a.get("type").and_then(Value::as_str) == Some(kind))
            .and_then(|a| a.get("address").and_then(Value::as_str))
            .map(str::to_string)
    };
    let address = pick("InternalIP")
        .or_else(|| pick("ExternalIP"))
        .or_else(|| pick("Hostname"))?;
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_i64)
        .unwrap_or(10250);
    Some((address, port))
}

/// The container a request names, or the pod's only container.
fn container(pod: &Value, requested: Option<&str>) -> ApiResult<String> {
    if let Some(c) = requested.filter(|c| !c.is_empty()) {
        return Ok(c.to_string());
    }
    let names: Vec<&str> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    match names.as_slice() {
        [only] => Ok(only.to_string()),
        _ => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {}, choose one of: [{}]",
            meta::name(pod),
            names.join(" ")
        ))),
    }
}

/// The kubelet path and query for a pod subresource request.
fn kubelet_target(pod: &Value, subresource: &str, query: &str) -> ApiResult<String> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let requested = pairs
        .iter()
        .find(|(k, _)| k == "container")
        .map(|(_, v)| v.as_str());
    let rest: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().filter(|(k, _)| k != "container"))
        .finish();
    let (ns, name) = (meta::namespace(pod), meta::name(pod));
    let path = match subresource {
        "log" => format!("/containerLogs/{ns}/{name}/{}", container(pod, requested)?),
        "exec" | "attach" => format!("/{subresource}/{ns}/{name}/{}", container(pod, requested)?),
        _ => format!("/portforward/{ns}/{name}"),
    };
    Ok(if rest.is_empty() {
        path
    } else {
        format!("{path}?{rest}")
    })
}

/// Proxies one pod subresource request to the kubelet of the pod's node.
pub async fn proxy(
    server: &ApiServer,
    ns: &str,
    name: &str,
    subresource: &str,
    mut req: Request,
) -> ApiResult<Response> {
    // WebSocket upgrades (v5.channel.k8s.io, port-forward tunnelled over WebSocket) go to the
    // kubelet like SPDY ones: it translates what the container runtime does not speak.
    let pods =
        catalog::find("", "v1", "pods").ok_or_else(|| ApiError::internal("no pods resource"))?;
    let nodes =
        catalog::find("", "v1", "nodes").ok_or_else(|| ApiError::internal("no nodes resource"))?;
    let pod = Store::new(server, pods).get(ns, name, None).await?;
    let node_name = meta::str_at(&pod, "/spec/nodeName").to_string();
    if node_name.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let node = Store::new(server, nodes)
        .get("", &node_name, Some("0"))
        .await?;
    let (address, port) = kubelet_address(&node)
        .ok_or_else(|| ApiError::service_unavailable(format!("node {node_name} has no address")))?;
    let target = kubelet_target(&pod, subresource, req.uri().query().unwrap_or(""))?;

    let tcp = tokio::net::TcpStream::connect((address.as_str(), port as u16))
        .await
        .map_err(|e| {
            ApiError::service_unavailable(format!("dialing the kubelet at {address}:{port}: {e}"))
        })?;
    let server_name = ServerName::try_from(address.clone())
        .map_err(|e| ApiError::internal(format!("kubelet address {address}: {e}")))?;
    let tls = server
        .kubelet_tls
        .connect(server_name, tcp)
        .await
        .map_err(|e| {
            ApiError::service_unavailable(format!("TLS to the kubelet at {address}:{port}: {e}"))
        })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| ApiError::service_unavailable(format!("HTTP to the kubelet: {e}")))?;
    tokio::spawn(async move {
        if let Err(err) = conn.with_upgrades().await {
            tracing::debug!(%err, "kubelet connection ended");
        }
    });

    let client_upgrade = hyper::upgrade::on(&mut req);
    let (parts, body) = req.into_parts();
    let mut outgoing = hyper::Request::builder().method(parts.method.clone()).uri(
        target
            .parse::<Uri>()
            .map_err(|e| ApiError::bad_request(e.to_string()))?,
    );
    for (k, v) in &parts.headers {
        // The client's credentials are for the apiserver, not the kubelet.
        if k != header::AUTHORIZATION && k != header::HOST {
            outgoing = outgoing.header(k, v);
        }
    }
    let outgoing = outgoing
        .header(
            header::HOST,
            HeaderValue::from_str(&format!("{address}:{port}"))
                .unwrap_or(HeaderValue::from_static("kubelet")),
        )
        .body(body)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut response = sender
        .send_request(outgoing)
        .await
        .map_err(|e| ApiError::service_unavailable(format!("proxying to the kubelet: {e}")))?;

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let kubelet_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            match (client_upgrade.await, kubelet_upgrade.await) {
                (Ok(client), Ok(kubelet)) => {
                    let mut client = TokioIo::new(client);
                    let mut kubelet = TokioIo::new(kubelet);
                    if let Err(err) = tokio::io::copy_bidirectional(&mut client, &mut kubelet).await
                    {
                        tracing::debug!(%err, "streaming connection ended");
                    }
                }
                (Err(err), _) | (_, Err(err)) => {
                    tracing::debug!(%err, "upgrading a streaming connection")
                }
            }
        });
        let (parts, _) = response.into_parts();
        return Ok(Response::from_parts(parts, Body::empty()));
    }
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(parts, Body::new(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn targets_name_the_container() {
        let pod = json!({"metadata": {"name": "p", "namespace": "n"}, "spec": {"containers": [{"name": "c"}]}});
        assert_eq!(
            kubelet_target(&pod, "log", "follow=true").unwrap(),
            "/containerLogs/n/p/c?follow=true"
        );
        assert_eq!(
            kubelet_target(&pod, "exec", "command=ls&command=-l&container=c&stdout=1").unwrap(),
            "/exec/n/p/c?command=ls&command=-l&stdout=1"
        );
        assert_eq!(
            kubelet_target(&pod, "portforward", "").unwrap(),
            "/portforward/n/p"
        );
        let two = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert!(kubelet_target(&two, "log", "")
            .unwrap_err()
            .message
            .contains("choose one of: [a b]"));
        let node = json!({"status": {"addresses": [{"type": "Hostname", "address": "h"}, {"type": "InternalIP", "address": "10.0.0.2"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10251}}}});
        assert_eq!(kubelet_address(&node), Some(("10.0.0.2".into(), 10251)));
    }
}
