//! Choosing the proxy mode: the requested one (nftables by default) if it works on this host,
//! otherwise the next that does — iptables, then kube-proxy forwarding traffic itself — with a
//! log line saying why, and a Warning event on the Node when it had to fall back.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use kube::{api::PostParams, Api};

use crate::{config::ProxyMode, iptables, nftables};

/// The chosen mode and the reason for the choice.
#[derive(Debug, Clone)]
pub struct Selection {
    pub mode: ProxyMode,
    pub reason: String,
    /// Set when the preferred mode could not be used.
    pub fell_back_from: Option<ProxyMode>,
}

async fn works(mode: ProxyMode) -> bool {
    match mode {
        ProxyMode::Nftables => nftables::usable().await,
        ProxyMode::Iptables => iptables::Backend::detect().await.is_some(),
        ProxyMode::Userspace => true,
    }
}

/// Picks the mode for `requested` (None: upstream's default, nftables where it works).
pub async fn select(requested: Option<ProxyMode>) -> Selection {
    let preferred = requested.unwrap_or(ProxyMode::Nftables);
    if works(preferred).await {
        let reason = match requested {
            Some(_) => format!(
                "{} was requested and works on this host",
                preferred.as_str()
            ),
            None => "no mode was requested and nftables works on this host".to_string(),
        };
        return Selection {
            mode: preferred,
            reason,
            fell_back_from: None,
        };
    }
    let mut tried = vec![preferred.as_str()];
    for candidate in [
        ProxyMode::Nftables,
        ProxyMode::Iptables,
        ProxyMode::Userspace,
    ] {
        if candidate == preferred {
            continue;
        }
        if works(candidate).await {
            return Selection {
                mode: candidate,
                reason: format!("{} does not work on this host", tried.join(" and ")),
                fell_back_from: Some(preferred),
            };
        }
        tried.push(candidate.as_str());
    }
    Selection {
        mode: ProxyMode::Userspace,
        reason: "no packet filter works on this host".into(),
        fell_back_from: Some(preferred),
    }
}

/// Records the fallback as a Warning event on this node's Node object.
pub async fn record_fallback(client: kube::Client, node_name: &str, selection: &Selection) {
    let Some(from) = selection.fell_back_from else {
        return;
    };
    let now = jiff::Timestamp::now();
    let event = Event {
        metadata: kube::api::ObjectMeta {
            generate_name: Some(format!("{node_name}.")),
            namespace: Some("default".into()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            kind: Some("Node".into()),
            api_version: Some("v1".into()),
            name: Some(node_name.to_string()),
            uid: Some(node_name.to_string()),
            ..Default::default()
        },
        reason: Some("ProxyModeFallback".into()),
        message: Some(format!(
            "kube-proxy runs in {} mode instead of {}: {}",
            selection.mode.as_str(),
            from.as_str(),
            selection.reason
        )),
        type_: Some("Warning".into()),
        source: Some(EventSource {
            component: Some("kube-proxy".into()),
            host: Some(node_name.to_string()),
        }),
        first_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now)),
        last_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now)),
        count: Some(1),
        reporting_component: Some("kube-proxy".into()),
        reporting_instance: Some(node_name.to_string()),
        ..Default::default()
    };
    let api: Api<Event> = Api::namespaced(client, "default");
    if let Err(err) = api.create(&PostParams::default(), &event).await {
        tracing::warn!(%err, node = node_name, "could not record the proxy mode fallback event");
    }
}
