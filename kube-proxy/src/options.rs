//! kube-proxy's command-line flags, under upstream's names. Flags given explicitly override the
//! `--config` file.

use std::path::PathBuf;

use clap::Parser;

use crate::config::{ConfigError, KubeProxyConfiguration, ProxyConfig};

/// The network proxy that runs on each node: it programs the host so that traffic to Service
/// IPs and node ports reaches the Service's endpoints.
#[derive(Debug, Parser)]
#[command(name = "kube-proxy", version)]
pub struct Options {
    /// Path to a kubeconfig file with authorization information and the apiserver location.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// A KubeProxyConfiguration file; flags given on the command line override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Which proxy mode to use: nftables, iptables or userspace (default: the first that works).
    #[arg(long = "proxy-mode")]
    pub proxy_mode: Option<String>,
    /// Use this name instead of the host name to identify this node.
    #[arg(long = "hostname-override")]
    pub hostname_override: Option<String>,
    /// The pod CIDR(s) of the cluster; traffic from outside them is masqueraded.
    #[arg(long = "cluster-cidr")]
    pub cluster_cidr: Option<String>,
    /// Comma-separated CIDRs whose node addresses accept NodePort traffic (default: all).
    #[arg(long = "nodeport-addresses", value_delimiter = ',')]
    pub nodeport_addresses: Option<Vec<String>>,
    /// The ip:port for the health check server (empty disables it).
    #[arg(long = "healthz-bind-address")]
    pub healthz_bind_address: Option<String>,
    /// The ip:port for the metrics server (empty disables it).
    #[arg(long = "metrics-bind-address")]
    pub metrics_bind_address: Option<String>,
    /// Masquerade all traffic sent to service IPs.
    #[arg(long = "masquerade-all")]
    pub masquerade_all: bool,
    /// The minimum interval between syncs of the proxy rules (e.g. 1s).
    #[arg(long = "iptables-min-sync-period")]
    pub min_sync_period: Option<String>,
    /// The maximum interval between full syncs of the proxy rules (e.g. 30s).
    #[arg(long = "iptables-sync-period")]
    pub sync_period: Option<String>,
    /// Remove every rule, interface address and table kube-proxy installed, then exit.
    #[arg(long)]
    pub cleanup: bool,
    /// Log verbosity (klog levels).
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,
}

impl Options {
    /// The configuration file (if any) with explicitly set flags applied on top.
    pub fn configuration(&self) -> Result<ProxyConfig, ConfigError> {
        let mut cfg: KubeProxyConfiguration =
            component_base::config::load(self.config.as_deref(), "KUBE_PROXY", &[])?;
        if let Some(k) = &self.kubeconfig {
            cfg.client_connection.kubeconfig = k.display().to_string();
        }
        if let Some(m) = &self.proxy_mode {
            cfg.mode = m.clone();
        }
        if let Some(h) = &self.hostname_override {
            cfg.hostname_override = h.clone();
        }
        if let Some(c) = &self.cluster_cidr {
            cfg.cluster_cidr = c.clone();
        }
        if let Some(n) = &self.nodeport_addresses {
            cfg.node_port_addresses = n.clone();
        }
        if let Some(a) = &self.healthz_bind_address {
            cfg.healthz_bind_address = a.clone();
        }
        if let Some(a) = &self.metrics_bind_address {
            cfg.metrics_bind_address = a.clone();
        }
        for settings in [&mut cfg.iptables, &mut cfg.nftables] {
            if self.masquerade_all {
                settings.masquerade_all = true;
            }
            if let Some(p) = &self.min_sync_period {
                settings.min_sync_period = p.clone();
            }
            if let Some(p) = &self.sync_period {
                settings.sync_period = p.clone();
            }
        }
        cfg.resolve()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_defaults() {
        let o = Options::parse_from([
            "kube-proxy",
            "--proxy-mode=userspace",
            "--hostname-override=node-a",
            "--cluster-cidr=10.244.0.0/16",
            "--nodeport-addresses=10.99.0.0/24,10.98.0.0/24",
            "--healthz-bind-address=127.0.0.1",
            "--metrics-bind-address=",
            "--iptables-min-sync-period=200ms",
        ]);
        let c = o.configuration().unwrap();
        assert_eq!(c.requested_mode, Some(crate::config::ProxyMode::Userspace));
        assert_eq!(c.node_port_cidrs.len(), 2);
        assert_eq!(
            c.healthz_bind_address,
            Some("127.0.0.1:10256".parse().unwrap())
        );
        assert_eq!(c.metrics_bind_address, None);
        assert_eq!(c.min_sync_period, std::time::Duration::from_millis(200));
    }
}
