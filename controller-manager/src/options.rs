//! Command-line flags, named as upstream kube-controller-manager names them.

use std::{path::PathBuf, time::Duration};

use clap::Parser;

/// Parses Go-style durations (`40s`, `5m0s`) for clap.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    component_base::component_config::parse_duration(s.trim()).map_err(|e| e.to_string())
}

/// kube-controller-manager's flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "kube-controller-manager",
    about = "The Kubernetes controller manager: the control loops that move the cluster's state toward its desired state."
)]
pub struct Options {
    /// Path to a kubeconfig file with authorization and master location information.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,

    /// Controllers to enable: '*' enables all on-by-default controllers, 'foo' enables the
    /// controller named foo, '-foo' disables it.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,

    /// Start a leader election client and gain leadership before running the controllers.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: bool,

    /// How long non-leader candidates wait after observing a leadership renewal before trying
    /// to acquire leadership.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Duration,

    /// How long the leader keeps trying to renew before it stops leading.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Duration,

    /// How long candidates wait between attempts to acquire and renew leadership.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: Duration,

    /// The name of the Lease used for leader election.
    #[arg(long, default_value = "kube-controller-manager")]
    pub leader_elect_resource_name: String,

    /// The namespace of the Lease used for leader election.
    #[arg(long, default_value = "kube-system")]
    pub leader_elect_resource_namespace: String,

    /// Run each controller with the credentials of its own ServiceAccount in kube-system.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub use_service_account_credentials: bool,

    /// The port serving /healthz and /metrics over HTTPS.
    #[arg(long, default_value_t = 10257)]
    pub secure_port: u16,

    /// The address the secure port listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: String,

    /// Where the self-signed serving certificate is kept.
    #[arg(long, default_value = "/var/run/kubernetes")]
    pub cert_dir: PathBuf,

    /// The CA bundle published as `kube-root-ca.crt` in every namespace; defaults to the
    /// kubeconfig's certificate authority.
    #[arg(long)]
    pub root_ca_file: Option<PathBuf>,

    /// How long a running node may go without a heartbeat before it is marked unhealthy.
    #[arg(long, default_value = "50s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,

    /// How long a starting node may go without a heartbeat before it is marked unhealthy.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub node_startup_grace_period: Duration,

    /// How often node health is checked.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub node_monitor_period: Duration,

    /// Nodes per second whose pods may be evicted when a zone is healthy.
    #[arg(long, default_value_t = 0.1)]
    pub node_eviction_rate: f64,

    /// Nodes per second whose pods may be evicted in a partially disrupted zone larger than
    /// --large-cluster-size-threshold (in smaller ones evictions stop).
    #[arg(long, default_value_t = 0.01)]
    pub secondary_node_eviction_rate: f64,

    /// Nodes a zone must exceed for partial disruption to slow rather than stop evictions.
    #[arg(long, default_value_t = 50)]
    pub large_cluster_size_threshold: usize,

    /// Share of not-Ready nodes (more than two) at which a zone counts as partially disrupted.
    #[arg(long, default_value_t = 0.55)]
    pub unhealthy_zone_threshold: f64,

    /// Deployments synced concurrently.
    #[arg(long, default_value_t = 5)]
    pub concurrent_deployment_syncs: usize,

    /// ReplicaSets synced concurrently.
    #[arg(long, default_value_t = 5)]
    pub concurrent_replicaset_syncs: usize,

    /// Services whose EndpointSlices are synced concurrently.
    #[arg(long, default_value_t = 5)]
    pub concurrent_service_endpoint_syncs: usize,

    /// Services whose Endpoints are synced concurrently.
    #[arg(long, default_value_t = 5)]
    pub concurrent_endpoint_syncs: usize,

    /// Most endpoints one EndpointSlice holds.
    #[arg(long, default_value_t = 100)]
    pub max_endpoints_per_slice: usize,

    /// Namespaces deleted concurrently.
    #[arg(long, default_value_t = 10)]
    pub concurrent_namespace_syncs: usize,

    /// Service accounts synced concurrently.
    #[arg(long, default_value_t = 5)]
    pub concurrent_serviceaccount_token_syncs: usize,

    /// Objects garbage-collected concurrently.
    #[arg(long, default_value_t = 20)]
    pub concurrent_gc_syncs: usize,

    /// Enables the garbage collector.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub enable_garbage_collector: bool,

    /// Gives every node a pod CIDR out of --cluster-cidr.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub allocate_node_cidrs: bool,

    /// The CIDR range pods are addressed from.
    #[arg(long)]
    pub cluster_cidr: Option<String>,

    /// The prefix length of each node's pod CIDR (IPv4).
    #[arg(long, default_value_t = 24)]
    pub node_cidr_mask_size: u8,

    /// Jobs synced concurrently.
    #[arg(long, default_value_t = 5)]
    pub concurrent_job_syncs: usize,

    /// CronJobs synced concurrently.
    #[arg(long, default_value_t = 5)]
    pub concurrent_cron_job_syncs: usize,

    /// Terminated pods kept before the oldest are garbage-collected (0 disables).
    #[arg(long, default_value_t = 12500)]
    pub terminated_pod_gc_threshold: usize,

    /// StatefulSets synced concurrently.
    #[arg(long, default_value_t = 5)]
    pub concurrent_statefulset_syncs: usize,

    /// DaemonSets synced concurrently.
    #[arg(long, default_value_t = 2)]
    pub concurrent_daemonset_syncs: usize,

    /// Log verbosity, as klog's -v.
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,

    /// Log format: text or json.
    #[arg(long, default_value = "text")]
    pub logging_format: component_base::logging::Format,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations_and_upstream_flags() {
        assert_eq!(parse_duration("40s"), Ok(Duration::from_secs(40)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("5x").is_err());
        let o = Options::parse_from([
            "kube-controller-manager",
            "--controllers=*,-job",
            "--leader-elect=false",
            "--node-monitor-grace-period=5s",
        ]);
        assert_eq!(o.controllers, vec!["*", "-job"]);
        assert!(!o.leader_elect);
        assert_eq!(o.node_monitor_grace_period, Duration::from_secs(5));
        assert!(!o.use_service_account_credentials);
        let o = Options::parse_from([
            "kube-controller-manager",
            "--use-service-account-credentials",
        ]);
        assert!(o.use_service_account_credentials);
        assert!(Options::parse_from(["kube-controller-manager"]).leader_elect);
    }
}
