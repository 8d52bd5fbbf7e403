//! The `KubeProxyConfiguration` (kubeproxy.config.k8s.io/v1alpha1) that `--config` names, with
//! upstream's defaults; explicitly set flags are applied on top of it in `options`.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::Deserialize;

/// Why a configuration value could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid duration {0:?}: want a Go duration such as \"1s\" or \"15m0s\"")]
    Duration(String),
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error(transparent)]
    Load(#[from] component_base::config::ConfigError),
}

/// The proxy modes this kube-proxy implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    Nftables,
    Iptables,
    Userspace,
}

impl ProxyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyMode::Nftables => "nftables",
            ProxyMode::Iptables => "iptables",
            ProxyMode::Userspace => "userspace",
        }
    }
}

impl std::str::FromStr for ProxyMode {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "nftables" => Ok(ProxyMode::Nftables),
            "iptables" => Ok(ProxyMode::Iptables),
            "userspace" => Ok(ProxyMode::Userspace),
            other => Err(ConfigError::Invalid {
                field: "mode",
                value: other.to_string(),
                reason: "want nftables, iptables or userspace".into(),
            }),
        }
    }
}

/// `clientConnection`: how to reach the apiserver.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientConnection {
    pub kubeconfig: String,
}

/// The per-mode sync settings (`iptables:` and `nftables:` blocks).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SyncSettings {
    pub masquerade_all: bool,
    pub masquerade_bit: Option<u8>,
    pub min_sync_period: String,
    pub sync_period: String,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            masquerade_all: false,
            masquerade_bit: Some(14),
            min_sync_period: "1s".into(),
            sync_period: "30s".into(),
        }
    }
}

/// The subset of upstream's `KubeProxyConfiguration` this kube-proxy acts on.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeProxyConfiguration {
    pub api_version: String,
    pub kind: String,
    pub client_connection: ClientConnection,
    pub hostname_override: String,
    #[serde(rename = "clusterCIDR")]
    pub cluster_cidr: String,
    pub mode: String,
    pub node_port_addresses: Vec<String>,
    pub healthz_bind_address: String,
    pub metrics_bind_address: String,
    pub iptables: SyncSettings,
    pub nftables: SyncSettings,
}

impl Default for KubeProxyConfiguration {
    fn default() -> Self {
        KubeProxyConfiguration {
            api_version: "kubeproxy.config.k8s.io/v1alpha1".into(),
            kind: "KubeProxyConfiguration".into(),
            client_connection: ClientConnection::default(),
            hostname_override: String::new(),
            cluster_cidr: String::new(),
            mode: String::new(),
            node_port_addresses: Vec::new(),
            healthz_bind_address: "0.0.0.0:10256".into(),
            metrics_bind_address: "127.0.0.1:10249".into(),
            iptables: SyncSettings::default(),
            nftables: SyncSettings::default(),
        }
    }
}

/// The configuration in the types the proxy works with.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub kubeconfig: Option<PathBuf>,
    pub hostname: String,
    pub cluster_cidrs: Vec<crate::net::Cidr>,
    pub requested_mode: Option<ProxyMode>,
    pub node_port_cidrs: Vec<crate::net::Cidr>,
    pub healthz_bind_address: Option<SocketAddr>,
    pub metrics_bind_address: Option<SocketAddr>,
    pub masquerade_all: bool,
    pub masquerade_mark: u32,
    pub min_sync_period: Duration,
    pub sync_period: Duration,
}

impl KubeProxyConfiguration {
    /// Validates and converts; the node name falls back to the host name as upstream does.
    pub fn resolve(&self) -> Result<ProxyConfig, ConfigError> {
        let requested_mode = match self.mode.as_str() {
            "" => None,
            m => Some(m.parse()?),
        };
        let settings = match requested_mode {
            Some(ProxyMode::Iptables) => &self.iptables,
            _ => &self.nftables,
        };
        let cidrs = |field: &'static str, list: &[String]| {
            list.iter()
                .flat_map(|s| s.split(','))
                .map(str::trim)
                .filter(|s| !s.is_empty() && *s != "primary")
                .map(|s| {
                    s.parse().map_err(|reason| ConfigError::Invalid {
                        field,
                        value: s.to_string(),
                        reason,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let hostname = if self.hostname_override.is_empty() {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_lowercase())
                .unwrap_or_default()
        } else {
            self.hostname_override.trim().to_lowercase()
        };
        let bit = settings.masquerade_bit.unwrap_or(14);
        if bit > 31 {
            return Err(ConfigError::Invalid {
                field: "masqueradeBit",
                value: bit.to_string(),
                reason: "must be within 0..31".into(),
            });
        }
        Ok(ProxyConfig {
            kubeconfig: (!self.client_connection.kubeconfig.is_empty())
                .then(|| PathBuf::from(&self.client_connection.kubeconfig)),
            hostname,
            cluster_cidrs: cidrs("clusterCIDR", std::slice::from_ref(&self.cluster_cidr))?,
            requested_mode,
            node_port_cidrs: cidrs("nodePortAddresses", &self.node_port_addresses)?,
            healthz_bind_address: bind_address(
                "healthzBindAddress",
                &self.healthz_bind_address,
                10256,
            )?,
            metrics_bind_address: bind_address(
                "metricsBindAddress",
                &self.metrics_bind_address,
                10249,
            )?,
            masquerade_all: settings.masquerade_all,
            masquerade_mark: 1 << bit,
            min_sync_period: parse_duration(&settings.min_sync_period)?,
            sync_period: parse_duration(&settings.sync_period)?,
        })
    }
}

/// An empty address disables the server; a bare IP gets the default port, as upstream allows.
fn bind_address(
    field: &'static str,
    value: &str,
    default_port: u16,
) -> Result<Option<SocketAddr>, ConfigError> {
    if value.is_empty() {
        return Ok(None);
    }
    if let Ok(ip) = value.parse::<std::net::IpAddr>() {
        return Ok(Some(SocketAddr::new(ip, default_port)));
    }
    value
        .parse()
        .map(Some)
        .map_err(|e: std::net::AddrParseError| ConfigError::Invalid {
            field,
            value: value.to_string(),
            reason: e.to_string(),
        })
}

/// Parses a Go `time.Duration` string such as `1s`, `500ms` or `1h2m3s`.
pub fn parse_duration(s: &str) -> Result<Duration, ConfigError> {
    component_base::component_config::parse_duration(s).map_err(|e| ConfigError::Duration(e.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_duration("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration("15m0s").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn loads_a_config_file_with_upstream_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kube-proxy.yaml");
        std::fs::write(
            &path,
            "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n\
             mode: iptables\nclusterCIDR: 10.244.0.0/16\nhostnameOverride: Node-A\n\
             nodePortAddresses: [\"10.99.0.0/24\"]\niptables:\n  minSyncPeriod: 100ms\n  syncPeriod: 10s\n",
        )
        .unwrap();
        let cfg: KubeProxyConfiguration =
            component_base::config::load(Some(&path), "KUBE_PROXY_TEST_NONE", &[]).unwrap();
        let resolved = cfg.resolve().unwrap();
        assert_eq!(resolved.requested_mode, Some(ProxyMode::Iptables));
        assert_eq!(resolved.hostname, "node-a");
        assert_eq!(resolved.cluster_cidrs.len(), 1);
        assert_eq!(resolved.node_port_cidrs.len(), 1);
        assert_eq!(resolved.min_sync_period, Duration::from_millis(100));
        assert_eq!(resolved.sync_period, Duration::from_secs(10));
        assert_eq!(resolved.masquerade_mark, 0x4000);
        assert_eq!(
            resolved.healthz_bind_address,
            Some("0.0.0.0:10256".parse().unwrap())
        );
    }
}
