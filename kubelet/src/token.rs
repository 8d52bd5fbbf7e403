//! Service account tokens for projected volumes, from the TokenRequest API, bound to the pod
//! and cached until 80% of their lifetime has passed (upstream's token manager), so that the
//! file in the volume is rotated before the token expires.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec},
    core::v1::{Pod, ServiceAccount},
};
use kube::{api::PostParams, Api};

/// Why a token could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no apiserver to request a service account token from (standalone mode)")]
    Standalone,
    #[error("requesting a token for service account {0}: {1}")]
    Request(String, kube::Error),
    #[error("the token request for service account {0} returned no token")]
    Empty(String),
}

struct Cached {
    token: String,
    refresh_at: Instant,
}

/// Tokens by (pod UID, service account, audience, expiration).
#[derive(Default)]
pub struct TokenManager {
    cache: Mutex<HashMap<(String, String, String, i64), Cached>>,
}

impl TokenManager {
    /// A token for the pod's service account, from the cache while it is fresh.
    pub async fn token(
        &self,
        client: Option<&kube::Client>,
        pod: &Pod,
        audience: Option<&str>,
        expiration_seconds: i64,
    ) -> Result<String, TokenError> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let namespace = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let account = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".into());
        let key = (
            uid.clone(),
            account.clone(),
            audience.unwrap_or_default().to_string(),
            expiration_seconds,
        );
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = cache.get(&key).filter(|c| c.refresh_at > Instant::now()) {
                return Ok(c.token.clone());
            }
        }
        let client = client.ok_or(TokenError::Standalone)?;
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: audience.map(|a| vec![a.to_string()]).unwrap_or_default(),
                expiration_seconds: Some(expiration_seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: pod.metadata.name.clone(),
                    uid: Some(uid),
                }),
            },
            ..Default::default()
        };
        let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
        let body = serde_json::to_vec(&request)
            .map_err(|e| TokenError::Request(account.clone(), kube::Error::SerdeError(e)))?;
        let response: TokenRequest = api
            .create_subresource("token", &account, &PostParams::default(), &body)
            .await
            .map_err(|e| TokenError::Request(account.clone(), e))?;
        let status = response
            .status
            .filter(|s| !s.token.is_empty())
            .ok_or_else(|| TokenError::Empty(account.clone()))?;
        let token = status.token;
        // The apiserver may shorten the lifetime; go by what it granted.
        let granted = status
            .expiration_timestamp
            .0
            .duration_since(jiff::Timestamp::now())
            .as_secs();
        let ttl = Duration::from_secs(if granted > 0 {
            granted as u64
        } else {
            expiration_seconds.max(1) as u64
        });
        let refresh_at = Instant::now() + ttl.mul_f64(0.8);
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(
            key,
            Cached {
                token: token.clone(),
                refresh_at,
            },
        );
        Ok(token)
    }

    /// Drops the tokens of a pod that is gone.
    pub fn forget(&self, uid: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| k.0 != uid);
    }
}
