//! Leader election on a `coordination.k8s.io/v1` Lease, as upstream's client-go leaderelection:
//! a candidate takes the lease when it is free or expired, renews it every retry period, and
//! gives up leadership (the process should exit) when it cannot renew within the renew
//! deadline.

use std::time::Duration;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
};
use kube::{
    api::{Api, PostParams},
    Client,
};

/// Where and how long leadership is held.
#[derive(Debug, Clone)]
pub struct Config {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Config {
    /// Upstream's defaults: 15 s lease, 10 s renew deadline, 2 s retry period.
    pub fn new(namespace: &str, name: &str, identity: &str) -> Config {
        Config {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Why leadership ended.
#[derive(Debug, thiserror::Error)]
pub enum LeaderElectionError {
    #[error(
        "leader election lost: could not renew lease {namespace}/{name} within the renew deadline"
    )]
    Lost { namespace: String, name: String },
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

/// The lease as this candidate would hold it, keeping the transition count.
fn held_by_me(config: &Config, current: Option<&Lease>) -> Lease {
    let spec = current.and_then(|l| l.spec.clone()).unwrap_or_default();
    let same_holder = spec.holder_identity.as_deref() == Some(config.identity.as_str());
    let transitions =
        spec.lease_transitions.unwrap_or(0) + i32::from(!same_holder && current.is_some());
    Lease {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            namespace: Some(config.namespace.clone()),
            resource_version: current.and_then(|l| l.metadata.resource_version.clone()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(config.identity.clone()),
            lease_duration_seconds: Some(config.lease_duration.as_secs() as i32),
            acquire_time: if same_holder {
                spec.acquire_time.clone()
            } else {
                Some(now())
            },
            renew_time: Some(now()),
            lease_transitions: Some(transitions),
            ..Default::default()
        }),
    }
}

/// Whether another holder's lease is still valid.
fn held_by_other(config: &Config, lease: &Lease) -> bool {
    let Some(spec) = &lease.spec else {
        return false;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder.is_empty() || holder == config.identity {
        return false;
    }
    let duration = spec.lease_duration_seconds.unwrap_or(15) as i64;
    match &spec.renew_time {
        Some(MicroTime(t)) => t.as_second() + duration > jiff::Timestamp::now().as_second(),
        None => false,
    }
}

/// One attempt to acquire or renew; true when this candidate holds the lease afterwards.
async fn try_acquire_or_renew(api: &Api<Lease>, config: &Config) -> bool {
    match api.get_opt(&config.name).await {
        Ok(None) => api
            .create(&PostParams::default(), &held_by_me(config, None))
            .await
            .is_ok(),
        Ok(Some(lease)) => {
            if held_by_other(config, &lease) {
                return false;
            }
            api.replace(
                &config.name,
                &PostParams::default(),
                &held_by_me(config, Some(&lease)),
            )
            .await
            .is_ok()
        }
        Err(err) => {
            tracing::warn!(%err, lease = %config.name, "reading the leader election lease");
            false
        }
    }
}

/// Waits until this candidate leads, then runs `lead` while renewing the lease. Returns when
/// `lead` finishes, or with an error when leadership is lost.
pub async fn run<F>(client: Client, config: Config, lead: F) -> Result<(), LeaderElectionError>
where
    F: std::future::Future<Output = ()>,
{
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    tracing::info!(lease = %format!("{}/{}", config.namespace, config.name), identity = %config.identity, "attempting to acquire leader lease");
    while !try_acquire_or_renew(&api, &config).await {
        tokio::time::sleep(config.retry_period).await;
    }
    tracing::info!(lease = %format!("{}/{}", config.namespace, config.name), identity = %config.identity, "successfully acquired lease");
    let renew = async {
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(config.retry_period).await;
            if try_acquire_or_renew(&api, &config).await {
                last_renewed = tokio::time::Instant::now();
            } else if last_renewed.elapsed() > config.renew_deadline {
                return LeaderElectionError::Lost {
                    namespace: config.namespace.clone(),
                    name: config.name.clone(),
                };
            }
        }
    };
    tokio::select! {
        () = lead => Ok(()),
        lost = renew => Err(lost),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_leases_are_free_and_valid_ones_are_not() {
        let config = Config::new("kube-system", "x", "me");
        let mut other = held_by_me(&Config::new("kube-system", "x", "other"), None);
        assert!(held_by_other(&config, &other));
        if let Some(spec) = other.spec.as_mut() {
            spec.renew_time = Some(MicroTime(jiff::Timestamp::from_second(1_000).unwrap()));
        }
        assert!(!held_by_other(&config, &other));
        let mine = held_by_me(&config, Some(&other));
        assert_eq!(mine.spec.unwrap().lease_transitions, Some(1));
    }
}
