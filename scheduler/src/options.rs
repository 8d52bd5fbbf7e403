//! Command-line flags, named as upstream kube-scheduler's.

use std::{net::IpAddr, path::PathBuf};

use clap::Parser;
use component_base::logging::Format;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "kube-scheduler",
    version,
    args_override_self = true,
    about = "The Kubernetes scheduler: assigns pending pods to nodes."
)]
pub struct Options {
    /// The path to the KubeSchedulerConfiguration file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Path to kubeconfig file with authorization and master location information.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The IP address on which to listen for the --secure-port port.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// The port on which to serve HTTPS with authentication and authorization.
    #[arg(long, default_value_t = 10259)]
    pub secure_port: u16,
    /// The directory where the self-signed serving certificate is kept when
    /// --tls-cert-file and --tls-private-key-file are not given.
    #[arg(long)]
    pub cert_dir: Option<PathBuf>,
    /// File containing the default x509 certificate for HTTPS.
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    /// File containing the default x509 private key matching --tls-cert-file.
    #[arg(long)]
    pub tls_private_key_file: Option<PathBuf>,
    /// Start a leader election client and gain leadership before executing the main loop.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub leader_elect: Option<bool>,
    /// How long non-leader candidates wait after observing a leadership renewal.
    #[arg(long)]
    pub leader_elect_lease_duration: Option<String>,
    /// How long the acting leader retries refreshing leadership before giving up.
    #[arg(long)]
    pub leader_elect_renew_deadline: Option<String>,
    /// How long clients wait between attempts to acquire and renew leadership.
    #[arg(long)]
    pub leader_elect_retry_period: Option<String>,
    /// The name of the lease object used for locking during leader election.
    #[arg(long)]
    pub leader_elect_resource_name: Option<String>,
    /// The namespace of the lease object used for locking during leader election.
    #[arg(long)]
    pub leader_elect_resource_namespace: Option<String>,
    /// Number for the log level verbosity.
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,
    /// Sets the log format: "text" or "json".
    #[arg(long, default_value = "text")]
    pub logging_format: Format,
}

impl Options {
    /// The flags that were set, as overrides of the configuration file's keys.
    pub fn overrides(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(v) = self.leader_elect {
            out.push(("leaderElection.leaderElect", v.to_string()));
        }
        let strings = [
            (
                "leaderElection.leaseDuration",
                &self.leader_elect_lease_duration,
            ),
            (
                "leaderElection.renewDeadline",
                &self.leader_elect_renew_deadline,
            ),
            (
                "leaderElection.retryPeriod",
                &self.leader_elect_retry_period,
            ),
            (
                "leaderElection.resourceName",
                &self.leader_elect_resource_name,
            ),
            (
                "leaderElection.resourceNamespace",
                &self.leader_elect_resource_namespace,
            ),
        ];
        for (key, value) in strings {
            if let Some(v) = value {
                out.push((key, v.clone()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_flag_spellings() {
        let o = Options::try_parse_from([
            "kube-scheduler",
            "--kubeconfig=/k",
            "--leader-elect=false",
            "--secure-port=12345",
            "--bind-address=127.0.0.1",
            "--leader-elect-lease-duration=4s",
            "-v=2",
        ])
        .unwrap();
        assert_eq!(o.secure_port, 12345);
        assert_eq!(o.verbosity, 2);
        let overrides = o.overrides();
        assert!(overrides.contains(&("leaderElection.leaderElect", "false".into())));
        assert!(overrides.contains(&("leaderElection.leaseDuration", "4s".into())));
        let o = Options::try_parse_from(["kube-scheduler", "--leader-elect"]).unwrap();
        assert_eq!(o.leader_elect, Some(true));
    }
}
