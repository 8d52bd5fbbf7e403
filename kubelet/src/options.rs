//! The kubelet's command line (upstream flag names) and its `KubeletConfiguration` file
//! (`kubelet.config.k8s.io/v1beta1`). Flags given explicitly win over the file, as upstream.

use std::{collections::BTreeMap, net::IpAddr, path::PathBuf, time::Duration};

use clap::Parser;
use k8s_openapi::api::core::v1::Taint;
use serde::Deserialize;

/// Kubernetes version the kubelet reports in `nodeInfo.kubeletVersion`.
pub const KUBELET_VERSION: &str = "v1.33.0";

#[derive(Debug, Parser)]
#[command(
    name = "kubelet",
    about = "The node agent: runs the pods bound to this node on a CRI runtime."
)]
pub struct Options {
    /// kubeconfig for the apiserver; without it the kubelet runs static pods only (standalone).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// A KubeletConfiguration file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The CRI endpoint, e.g. unix:///run/containerd/containerd.sock.
    #[arg(long)]
    pub container_runtime_endpoint: Option<String>,
    /// The node name instead of the host name.
    #[arg(long)]
    pub hostname_override: Option<String>,
    /// The node's InternalIP address.
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// Directory of static pod manifests.
    #[arg(long)]
    pub pod_manifest_path: Option<PathBuf>,
    /// Comma-separated DNS server IPs for ClusterFirst pods.
    #[arg(long, value_delimiter = ',')]
    pub cluster_dns: Vec<String>,
    /// The cluster's DNS domain, e.g. cluster.local.
    #[arg(long)]
    pub cluster_domain: Option<String>,
    /// Directory of the kubelet's files (pod volumes, plugins).
    #[arg(long, default_value = "/var/lib/kubelet")]
    pub root_dir: PathBuf,
    /// Labels to register the node with, key=value[,key=value].
    #[arg(long, value_delimiter = ',')]
    pub node_labels: Vec<String>,
    /// Address of the kubelet's secure port.
    #[arg(long)]
    pub address: Option<IpAddr>,
    /// The kubelet's secure port.
    #[arg(long)]
    pub port: Option<u16>,
    /// Directory of the kubelet's self-signed serving certificate when none is configured.
    #[arg(long)]
    pub cert_dir: Option<PathBuf>,
    /// Log verbosity (klog's -v).
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,
    /// text or json.
    #[arg(long, default_value = "text")]
    pub logging_format: component_base::logging::Format,
}

/// The subset of `KubeletConfiguration` this kubelet honours, with upstream's defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeletConfiguration {
    pub static_pod_path: Option<PathBuf>,
    #[serde(rename = "clusterDNS")]
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
    pub container_runtime_endpoint: String,
    pub address: IpAddr,
    pub port: u16,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_private_key_file: Option<PathBuf>,
    pub pod_logs_dir: PathBuf,
    pub resolv_conf: PathBuf,
    pub max_pods: u32,
    #[serde(with = "go_duration")]
    pub node_status_update_frequency: Duration,
    #[serde(with = "go_duration")]
    pub node_status_report_frequency: Duration,
    pub node_lease_duration_seconds: i32,
    #[serde(with = "go_duration")]
    pub sync_frequency: Duration,
    #[serde(with = "go_duration")]
    pub file_check_frequency: Duration,
    pub register_with_taints: Vec<Taint>,
    pub cgroup_root: String,
    pub eviction_hard: BTreeMap<String, String>,
    pub container_log_max_size: String,
    pub container_log_max_files: u32,
    pub authentication: KubeletAuthentication,
    pub authorization: KubeletAuthorization,
}

/// Who may call the node API (`authentication`), with upstream's v1beta1 defaults: client
/// certificates when a CA is given, bearer tokens through TokenReview, no anonymous access.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeletAuthentication {
    pub x509: KubeletX509Authentication,
    pub webhook: KubeletWebhookAuthentication,
    pub anonymous: KubeletAnonymousAuthentication,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeletX509Authentication {
    /// CA bundle that client certificates must chain to.
    #[serde(rename = "clientCAFile")]
    pub client_ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeletWebhookAuthentication {
    pub enabled: bool,
    #[serde(with = "go_duration", rename = "cacheTTL")]
    pub cache_ttl: Duration,
}

impl Default for KubeletWebhookAuthentication {
    fn default() -> Self {
        KubeletWebhookAuthentication {
            enabled: true,
            cache_ttl: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeletAnonymousAuthentication {
    pub enabled: bool,
}

/// How node API requests are authorized: `AlwaysAllow`, or `Webhook` (SubjectAccessReview).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeletAuthorization {
    pub mode: String,
    pub webhook: KubeletWebhookAuthorization,
}

impl Default for KubeletAuthorization {
    fn default() -> Self {
        KubeletAuthorization {
            mode: "Webhook".into(),
            webhook: KubeletWebhookAuthorization::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeletWebhookAuthorization {
    #[serde(with = "go_duration", rename = "cacheAuthorizedTTL")]
    pub cache_authorized_ttl: Duration,
    #[serde(with = "go_duration", rename = "cacheUnauthorizedTTL")]
    pub cache_unauthorized_ttl: Duration,
}

impl Default for KubeletWebhookAuthorization {
    fn default() -> Self {
        KubeletWebhookAuthorization {
            cache_authorized_ttl: Duration::from_secs(300),
            cache_unauthorized_ttl: Duration::from_secs(30),
        }
    }
}

impl Default for KubeletConfiguration {
    fn default() -> Self {
        KubeletConfiguration {
            static_pod_path: None,
            cluster_dns: Vec::new(),
            cluster_domain: String::new(),
            container_runtime_endpoint: "unix:///run/containerd/containerd.sock".into(),
            address: IpAddr::from([0, 0, 0, 0]),
            port: 10250,
            tls_cert_file: None,
            tls_private_key_file: None,
            pod_logs_dir: PathBuf::from("/var/log/pods"),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            max_pods: 110,
            node_status_update_frequency: Duration::from_secs(10),
            node_status_report_frequency: Duration::from_secs(300),
            node_lease_duration_seconds: 40,
            sync_frequency: Duration::from_secs(60),
            file_check_frequency: Duration::from_secs(20),
            register_with_taints: Vec::new(),
            cgroup_root: "/".into(),
            eviction_hard: BTreeMap::from([
                ("memory.available".to_string(), "100Mi".to_string()),
                ("nodefs.available".to_string(), "10%".to_string()),
            ]),
            container_log_max_size: "10Mi".into(),
            container_log_max_files: 5,
            authentication: KubeletAuthentication::default(),
            authorization: KubeletAuthorization::default(),
        }
    }
}

/// Go-style durations ("10s", "5m0s", "1h30m", "250ms") as upstream's configuration files use.
mod go_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Parses a Go duration string.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    component_base::component_config::parse_duration(text).map_err(|e| e.to_string())
}

/// Why the configuration could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error(transparent)]
    Config(#[from] component_base::config::ConfigError),
    #[error("invalid --node-labels entry {0:?}: want key=value")]
    NodeLabel(String),
}

impl Options {
    /// The configuration file (if any) with explicitly given flags layered on top.
    pub fn configuration(&self) -> Result<KubeletConfiguration, OptionsError> {
        let mut overrides: Vec<(&str, String)> = Vec::new();
        if let Some(v) = &self.container_runtime_endpoint {
            overrides.push(("containerRuntimeEndpoint", v.clone()));
        }
        if let Some(v) = &self.pod_manifest_path {
            overrides.push(("staticPodPath", v.display().to_string()));
        }
        if let Some(v) = &self.cluster_domain {
            overrides.push(("clusterDomain", v.clone()));
        }
        if let Some(v) = self.address {
            overrides.push(("address", v.to_string()));
        }
        if let Some(v) = self.port {
            overrides.push(("port", v.to_string()));
        }
        let mut config: KubeletConfiguration =
            component_base::config::load(self.config.as_deref(), "FERROKUBE_KUBELET", &overrides)?;
        if !self.cluster_dns.is_empty() {
            config.cluster_dns = self.cluster_dns.clone();
        }
        Ok(config)
    }

    /// `--node-labels` as pairs.
    pub fn node_labels(&self) -> Result<Vec<(String, String)>, OptionsError> {
        self.node_labels
            .iter()
            .filter(|l| !l.is_empty())
            .map(|l| {
                l.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .ok_or_else(|| OptionsError::NodeLabel(l.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m0s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn config_file_under_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubelet.yaml");
        std::fs::write(
            &path,
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nstaticPodPath: /etc/kubernetes/manifests\nclusterDNS: [10.96.0.10]\nclusterDomain: cluster.local\nnodeStatusUpdateFrequency: 4s\nregisterWithTaints:\n- key: a\n  effect: NoSchedule\n",
        )
        .unwrap();
        let opts = Options::parse_from([
            "kubelet",
            "--config",
            path.to_str().unwrap(),
            "--cluster-domain",
            "example.org",
        ]);
        let config = opts.configuration().unwrap();
        assert_eq!(
            config.static_pod_path,
            Some(PathBuf::from("/etc/kubernetes/manifests"))
        );
        assert_eq!(config.cluster_dns, vec!["10.96.0.10".to_string()]);
        assert_eq!(config.cluster_domain, "example.org");
        assert_eq!(config.node_status_update_frequency, Duration::from_secs(4));
        assert_eq!(config.register_with_taints.len(), 1);
        assert_eq!(config.port, 10250);
        assert!(config.authentication.webhook.enabled);
        assert!(!config.authentication.anonymous.enabled);
        assert_eq!(config.authorization.mode, "Webhook");
    }

    #[test]
    fn node_api_auth_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubelet.yaml");
        std::fs::write(
            &path,
            "authentication:\n  x509:\n    clientCAFile: /pki/ca.crt\n  webhook:\n    enabled: false\n    cacheTTL: 10s\n  anonymous:\n    enabled: true\nauthorization:\n  mode: AlwaysAllow\n",
        )
        .unwrap();
        let opts = Options::parse_from(["kubelet", "--config", path.to_str().unwrap()]);
        let config = opts.configuration().unwrap();
        let authn = &config.authentication;
        assert_eq!(
            authn.x509.client_ca_file,
            Some(PathBuf::from("/pki/ca.crt"))
        );
        assert!(!authn.webhook.enabled);
        assert_eq!(authn.webhook.cache_ttl, Duration::from_secs(10));
        assert!(authn.anonymous.enabled);
        assert_eq!(config.authorization.mode, "AlwaysAllow");
        assert_eq!(
            config.authorization.webhook.cache_authorized_ttl,
            Duration::from_secs(300)
        );
    }
}
