//! kube-apiserver's command line, with upstream's flag names.

use std::{net::IpAddr, path::PathBuf};

use clap::Parser;

/// Flags of kube-apiserver.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "kube-apiserver",
    version,
    about = "The Kubernetes API server, over etcd."
)]
pub struct Options {
    /// etcd endpoints (comma separated), e.g. http://127.0.0.1:2379.
    #[arg(long = "etcd-servers", value_delimiter = ',', required = true)]
    pub etcd_servers: Vec<String>,

    /// Prefix of every key in etcd.
    #[arg(long = "etcd-prefix", default_value = "/registry")]
    pub etcd_prefix: String,

    /// Interval between etcd compactions; 0 disables compaction.
    #[arg(long = "etcd-compaction-interval", default_value = "5m", value_parser = parse_duration)]
    pub etcd_compaction_interval: std::time::Duration,

    /// Port of the HTTPS API.
    #[arg(long = "secure-port", default_value_t = 6443)]
    pub secure_port: u16,

    /// Address to listen on.
    #[arg(long = "bind-address", default_value = "0.0.0.0")]
    pub bind_address: IpAddr,

    /// Address advertised to the cluster (the `kubernetes` endpoints); defaults to the first
    /// non-loopback address of the host, else the bind address.
    #[arg(long = "advertise-address")]
    pub advertise_address: Option<IpAddr>,

    /// Serving certificate (PEM, may include the chain).
    #[arg(long = "tls-cert-file")]
    pub tls_cert_file: Option<PathBuf>,

    /// Serving key (PEM).
    #[arg(long = "tls-private-key-file")]
    pub tls_private_key_file: Option<PathBuf>,

    /// Where a self-signed certificate is generated when no certificate is given.
    #[arg(long = "cert-dir", default_value = "/var/run/kubernetes")]
    pub cert_dir: PathBuf,

    /// Service cluster IP CIDR, or two comma-separated CIDRs (one per IP family) for dual-stack.
    #[arg(long = "service-cluster-ip-range", default_value = "10.0.0.0/24")]
    pub service_cluster_ip_range: String,

    /// Range of node ports.
    #[arg(long = "service-node-port-range", default_value = "30000-32767")]
    pub service_node_port_range: String,

    /// Admission plugins to enable in addition to the defaults.
    #[arg(long = "enable-admission-plugins", value_delimiter = ',')]
    pub enable_admission_plugins: Vec<String>,

    /// Default admission plugins to disable.
    #[arg(long = "disable-admission-plugins", value_delimiter = ',')]
    pub disable_admission_plugins: Vec<String>,

    /// Seconds a graceful shutdown waits for open requests.
    #[arg(long = "shutdown-delay-duration", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_delay: std::time::Duration,

    /// Log verbosity (klog's -v).
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,

    /// Log format: text or json.
    #[arg(long = "logging-format", default_value = "text")]
    pub logging_format: component_base::logging::Format,

    /// Client certificate the apiserver presents to kubelets (pods/log, exec, attach,
    /// portforward).
    #[arg(long = "kubelet-client-certificate", requires = "kubelet_client_key")]
    pub kubelet_client_certificate: Option<std::path::PathBuf>,

    /// Key of --kubelet-client-certificate.
    #[arg(long = "kubelet-client-key", requires = "kubelet_client_certificate")]
    pub kubelet_client_key: Option<std::path::PathBuf>,

    /// CA bundle that kubelets' serving certificates must chain to; without it they are not
    /// verified.
    #[arg(long = "kubelet-certificate-authority")]
    pub kubelet_certificate_authority: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub auth: crate::auth::AuthOptions,
}

/// Parses Go-style durations (`300ms`, `5s`, `1h30m`) for clap.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    component_base::component_config::parse_duration(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m").unwrap().as_secs(), 300);
        assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(parse_duration("250ms").unwrap().as_millis(), 250);
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x").is_err());
    }

    #[test]
    fn kubelet_client_certificate_needs_its_key() {
        let parse = |extra: &[&str]| {
            let mut args = vec!["kube-apiserver", "--etcd-servers=http://e:2379"];
            args.extend_from_slice(extra);
            Options::try_parse_from(args)
        };
        assert!(parse(&["--kubelet-client-certificate=c.crt"]).is_err());
        assert!(parse(&["--kubelet-client-key=c.key"]).is_err());
        let both = parse(&[
            "--kubelet-client-certificate=c.crt",
            "--kubelet-client-key=c.key",
        ]);
        assert!(both.is_ok_and(|o| o.kubelet_client_key.is_some()));
    }

    #[test]
    fn parses_upstream_flags() {
        let o = Options::try_parse_from([
            "kube-apiserver",
            "--etcd-servers=http://127.0.0.1:2379,http://127.0.0.1:2381",
            "--secure-port=7443",
            "--service-cluster-ip-range=10.96.0.0/12",
        ])
        .unwrap();
        assert_eq!(o.etcd_servers.len(), 2);
        assert_eq!(o.secure_port, 7443);
    }
}
