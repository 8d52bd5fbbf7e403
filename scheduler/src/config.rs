//! `KubeSchedulerConfiguration` (kubescheduler.config.k8s.io/v1): the component-config file
//! upstream's `--config` reads, with upstream's defaults filled in.

use std::{path::Path, time::Duration};

use serde::{Deserialize, Serialize};

/// The only component-config version this scheduler reads.
pub const API_VERSION: &str = "kubescheduler.config.k8s.io/v1";
/// The profile name pods get when they name no scheduler.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// Why a configuration was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Load(#[from] component_base::config::ConfigError),
    #[error("unsupported apiVersion {0:?}: want {API_VERSION}")]
    ApiVersion(String),
    #[error("unsupported kind {0:?}: want KubeSchedulerConfiguration")]
    Kind(String),
    #[error("invalid duration {value:?} for {field}")]
    Duration { field: &'static str, value: String },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubeSchedulerConfiguration {
    pub api_version: String,
    pub kind: String,
    pub parallelism: u32,
    pub leader_election: LeaderElectionConfiguration,
    pub client_connection: ClientConnection,
    /// 0 means adaptive, as upstream: 50% minus 1% per 125 nodes, never below 5%.
    pub percentage_of_nodes_to_score: Option<u32>,
    pub pod_initial_backoff_seconds: u64,
    pub pod_max_backoff_seconds: u64,
    pub profiles: Vec<Profile>,
}

impl Default for KubeSchedulerConfiguration {
    fn default() -> Self {
        KubeSchedulerConfiguration {
            api_version: API_VERSION.into(),
            kind: "KubeSchedulerConfiguration".into(),
            parallelism: 16,
            leader_election: LeaderElectionConfiguration::default(),
            client_connection: ClientConnection::default(),
            percentage_of_nodes_to_score: None,
            pod_initial_backoff_seconds: 1,
            pod_max_backoff_seconds: 10,
            profiles: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LeaderElectionConfiguration {
    pub leader_elect: bool,
    pub lease_duration: String,
    pub renew_deadline: String,
    pub retry_period: String,
    pub resource_lock: String,
    pub resource_name: String,
    pub resource_namespace: String,
}

impl Default for LeaderElectionConfiguration {
    fn default() -> Self {
        LeaderElectionConfiguration {
            leader_elect: true,
            lease_duration: "15s".into(),
            renew_deadline: "10s".into(),
            retry_period: "2s".into(),
            resource_lock: "leases".into(),
            resource_name: "kube-scheduler".into(),
            resource_namespace: "kube-system".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientConnection {
    pub kubeconfig: String,
    pub qps: f64,
    pub burst: u32,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Profile {
    pub scheduler_name: String,
    pub percentage_of_nodes_to_score: Option<u32>,
    pub plugins: Plugins,
    pub plugin_config: Vec<PluginConfig>,
}

/// Plugins enabled and disabled per extension point; `multiPoint` applies to every extension
/// point a plugin implements.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Plugins {
    pub multi_point: PluginSet,
    pub pre_filter: PluginSet,
    pub filter: PluginSet,
    pub post_filter: PluginSet,
    pub pre_score: PluginSet,
    pub score: PluginSet,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PluginSet {
    pub enabled: Vec<PluginRef>,
    pub disabled: Vec<PluginRef>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PluginRef {
    pub name: String,
    pub weight: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PluginConfig {
    pub name: String,
    pub args: serde_json::Value,
}

/// `PodTopologySpreadArgs`: the constraints given to pods that set none.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodTopologySpreadArgs {
    pub default_constraints: Vec<k8s_openapi::api::core::v1::TopologySpreadConstraint>,
    /// `System` (upstream's built-in defaults) or `List` (`defaultConstraints`).
    pub defaulting_type: String,
}

impl Default for PodTopologySpreadArgs {
    fn default() -> Self {
        PodTopologySpreadArgs {
            default_constraints: Vec::new(),
            defaulting_type: "System".into(),
        }
    }
}

/// `NodeResourcesFitArgs`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeResourcesFitArgs {
    pub ignored_resources: Vec<String>,
    pub scoring_strategy: ScoringStrategy,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ScoringStrategy {
    #[serde(rename = "type")]
    pub kind: String,
    pub resources: Vec<ResourceSpec>,
    pub requested_to_capacity_ratio: RequestedToCapacityRatio,
}

impl Default for ScoringStrategy {
    fn default() -> Self {
        ScoringStrategy {
            kind: "LeastAllocated".into(),
            resources: default_resources(),
            requested_to_capacity_ratio: RequestedToCapacityRatio::default(),
        }
    }
}

/// cpu and memory, weight 1 each: upstream's default scored resources.
pub fn default_resources() -> Vec<ResourceSpec> {
    vec![
        ResourceSpec {
            name: "cpu".into(),
            weight: 1,
        },
        ResourceSpec {
            name: "memory".into(),
            weight: 1,
        },
    ]
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResourceSpec {
    pub name: String,
    pub weight: i64,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequestedToCapacityRatio {
    pub shape: Vec<UtilizationShapePoint>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UtilizationShapePoint {
    pub utilization: i64,
    pub score: i64,
}

/// `NodeResourcesBalancedAllocationArgs`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BalancedAllocationArgs {
    pub resources: Vec<ResourceSpec>,
}

impl Default for BalancedAllocationArgs {
    fn default() -> Self {
        BalancedAllocationArgs {
            resources: default_resources(),
        }
    }
}

impl KubeSchedulerConfiguration {
    /// Reads the file (if any) under flag overrides, then validates and fills defaults.
    pub fn load(
        file: Option<&Path>,
        overrides: &[(&str, String)],
    ) -> Result<KubeSchedulerConfiguration, ConfigError> {
        let mut cfg: KubeSchedulerConfiguration =
            component_base::config::load(file, "FERROKUBE_SCHEDULER", overrides)?;
        cfg.complete()?;
        Ok(cfg)
    }

    /// Validates and applies upstream's defaults (one `default-scheduler` profile).
    pub fn complete(&mut self) -> Result<(), ConfigError> {
        if self.api_version != API_VERSION {
            return Err(ConfigError::ApiVersion(self.api_version.clone()));
        }
        if self.kind != "KubeSchedulerConfiguration" {
            return Err(ConfigError::Kind(self.kind.clone()));
        }
        if self.profiles.is_empty() {
            self.profiles.push(Profile::default());
        }
        let mut names = std::collections::BTreeSet::new();
        for profile in &mut self.profiles {
            if profile.scheduler_name.is_empty() {
                profile.scheduler_name = DEFAULT_SCHEDULER_NAME.into();
            }
            if !names.insert(profile.scheduler_name.clone()) {
                return Err(ConfigError::Invalid(format!(
                    "profiles[].schedulerName: Duplicate value: {:?}",
                    profile.scheduler_name
                )));
            }
        }
        if let Some(p) = self.percentage_of_nodes_to_score {
            if p > 100 {
                return Err(ConfigError::Invalid(format!(
                    "percentageOfNodesToScore: Invalid value: {p}: not in valid range [0-100]"
                )));
            }
        }
        if self.pod_initial_backoff_seconds == 0
            || self.pod_max_backoff_seconds < self.pod_initial_backoff_seconds
        {
            return Err(ConfigError::Invalid(
                "podMaxBackoffSeconds must be at least podInitialBackoffSeconds, which must be positive".into(),
            ));
        }
        for field in [
            (
                "leaderElection.leaseDuration",
                &self.leader_election.lease_duration,
            ),
            (
                "leaderElection.renewDeadline",
                &self.leader_election.renew_deadline,
            ),
            (
                "leaderElection.retryPeriod",
                &self.leader_election.retry_period,
            ),
        ] {
            parse_duration(field.0, field.1)?;
        }
        Ok(())
    }

    pub fn lease_duration(&self) -> Result<Duration, ConfigError> {
        parse_duration(
            "leaderElection.leaseDuration",
            &self.leader_election.lease_duration,
        )
    }

    pub fn renew_deadline(&self) -> Result<Duration, ConfigError> {
        parse_duration(
            "leaderElection.renewDeadline",
            &self.leader_election.renew_deadline,
        )
    }

    pub fn retry_period(&self) -> Result<Duration, ConfigError> {
        parse_duration(
            "leaderElection.retryPeriod",
            &self.leader_election.retry_period,
        )
    }
}

impl Profile {
    /// The `args` of the named plugin, decoded, or the plugin's defaults.
    pub fn args<T: serde::de::DeserializeOwned + Default>(
        &self,
        plugin: &str,
    ) -> Result<T, ConfigError> {
        match self.plugin_config.iter().find(|c| c.name == plugin) {
            None => Ok(T::default()),
            Some(c) if c.args.is_null() => Ok(T::default()),
            Some(c) => serde_json::from_value(c.args.clone()).map_err(|e| {
                ConfigError::Invalid(format!(
                    "pluginConfig {plugin:?} of profile {:?}: {e}",
                    self.scheduler_name
                ))
            }),
        }
    }
}

/// Parses a Go duration such as `15s`, `1m30s` or `500ms`. Unlike upstream, a bare `0` has
/// always been rejected here: every number needs a unit.
pub fn parse_duration(field: &'static str, value: &str) -> Result<Duration, ConfigError> {
    let err = || ConfigError::Duration {
        field,
        value: value.to_string(),
    };
    match value.trim() {
        "0" => Err(err()),
        text => component_base::component_config::parse_duration(text).map_err(|_| err()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_profiles_plugins_and_weights() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        let mut f = std::fs::File::create(&path).unwrap();
        write!(
            f,
            "apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 40
leaderElection:
  leaderElect: false
profiles:
- schedulerName: default-scheduler
  plugins:
    score:
      disabled:
      - name: ImageLocality
      enabled:
      - name: NodeAffinity
        weight: 5
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
- schedulerName: other
"
        )
        .unwrap();
        let cfg = KubeSchedulerConfiguration::load(Some(&path), &[]).unwrap();
        assert_eq!(cfg.percentage_of_nodes_to_score, Some(40));
        assert!(!cfg.leader_election.leader_elect);
        assert_eq!(cfg.profiles.len(), 2);
        let p = &cfg.profiles[0];
        assert_eq!(p.plugins.score.disabled[0].name, "ImageLocality");
        assert_eq!(p.plugins.score.enabled[0].weight, Some(5));
        let fit: NodeResourcesFitArgs = p.args("NodeResourcesFit").unwrap();
        assert_eq!(fit.scoring_strategy.kind, "MostAllocated");
        assert_eq!(fit.scoring_strategy.resources.len(), 2);
    }

    #[test]
    fn flags_override_and_defaults_apply() {
        let cfg = KubeSchedulerConfiguration::load(
            None,
            &[("leaderElection.leaderElect", "false".into())],
        )
        .unwrap();
        assert!(!cfg.leader_election.leader_elect);
        assert_eq!(cfg.profiles[0].scheduler_name, DEFAULT_SCHEDULER_NAME);
        assert_eq!(cfg.lease_duration().unwrap(), Duration::from_secs(15));
    }

    #[test]
    fn rejects_wrong_version_and_durations() {
        let mut cfg = KubeSchedulerConfiguration {
            api_version: "kubescheduler.config.k8s.io/v1beta3".into(),
            ..Default::default()
        };
        assert!(matches!(cfg.complete(), Err(ConfigError::ApiVersion(_))));
        assert_eq!(
            parse_duration("x", "1m30s").unwrap(),
            Duration::from_secs(90)
        );
        assert_eq!(
            parse_duration("x", "500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert!(parse_duration("x", "10").is_err());
    }
}
