//! The API client each controller writes with. By default every controller shares the process's
//! own client; with `--use-service-account-credentials` each runs as its own ServiceAccount
//! `kube-system/<name>` (bound by the apiserver's bootstrap policy to
//! `system:controller:<name>`), as upstream's dynamic client builder does: the account is
//! created if missing and its tokens come from the TokenRequest API, renewed before they expire
//! — or at once when the apiserver rejects one (say, its account was deleted and is recreated).
//! The shared informers and leader election stay on the process's own identity.

use std::{collections::HashMap, sync::Arc, time::Duration};

use component_base::client::{ClientError, Transport};
use http::{header::AUTHORIZATION, HeaderValue, Request, Response, StatusCode};
use k8s_openapi::api::{
    authentication::v1::{TokenRequest, TokenRequestSpec},
    core::v1::ServiceAccount,
};
use kube::{
    api::{Api, PostParams},
    client::Body,
    config::AuthInfo,
    Client,
};
use tokio::sync::Notify;
use tower::ServiceBuilder;

/// Where the controllers' ServiceAccounts live.
pub const NAMESPACE: &str = "kube-system";
/// The lifetime asked of each token, as upstream.
const EXPIRATION_SECONDS: i64 = 3600;
/// The share of a token's lifetime left when it is renewed, as upstream.
const LEEWAY_PERCENT: u32 = 20;
/// Shortest lifetime assumed for a token, so clock skew cannot make renewal spin.
const MIN_LIFETIME: Duration = Duration::from_secs(600);
/// Attempts (doubling from `FIRST_RETRY`) to get a controller's first token before giving up.
const FIRST_TOKEN_ATTEMPTS: u32 = 4;
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// The longest pause between attempts to renew a token that is still valid.
const MAX_RENEW_RETRY: Duration = Duration::from_secs(30);
/// The shortest time between renewals, however often tokens are rejected.
const MIN_RENEW_INTERVAL: Duration = Duration::from_secs(1);

/// Why a controller's client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientBuilderError {
    #[error("service account {NAMESPACE}/{name}: {source}")]
    ServiceAccount { name: String, source: kube::Error },
    #[error("token for service account {NAMESPACE}/{name}: {source}")]
    Token { name: String, source: kube::Error },
    #[error("token request for service account {NAMESPACE}/{0} returned no usable token")]
    NoToken(String),
    #[error("client for service accounts: {0}")]
    Build(#[from] ClientError),
}

/// Hands each controller the client it writes with.
#[derive(Clone)]
pub enum ControllerClientBuilder {
    /// Every controller uses the process's own client.
    Shared(Client),
    /// Every controller uses its own ServiceAccount's tokens.
    ServiceAccounts(Arc<ServiceAccountClients>),
}

/// Per-account clients: `root` provisions the accounts and requests their tokens.
pub struct ServiceAccountClients {
    root: Client,
    /// Connections with the process's client configuration but without its credentials,
    /// shared by every account's client.
    anonymous: Transport,
    /// One renewed token per account, shared by the controllers that run as it.
    tokens: tokio::sync::Mutex<HashMap<String, Arc<Token>>>,
}

impl ControllerClientBuilder {
    /// The per-ServiceAccount builder, from the process's client and its configuration.
    pub fn service_accounts(
        root: Client,
        mut config: kube::Config,
    ) -> Result<ControllerClientBuilder, ClientError> {
        config.auth_info = AuthInfo::default();
        Ok(ControllerClientBuilder::ServiceAccounts(Arc::new(
            ServiceAccountClients {
                root,
                anonymous: Transport::new(&config)?,
                tokens: Default::default(),
            },
        )))
    }

    /// The client the controller running as ServiceAccount `account` writes with.
    pub async fn client(&self, account: &str) -> Result<Client, ClientBuilderError> {
        match self {
            ControllerClientBuilder::Shared(client) => Ok(client.clone()),
            ControllerClientBuilder::ServiceAccounts(clients) => clients.client(account).await,
        }
    }
}

impl ServiceAccountClients {
    async fn client(&self, account: &str) -> Result<Client, ClientBuilderError> {
        let token = {
            let mut tokens = self.tokens.lock().await;
            match tokens.get(account) {
                Some(token) => token.clone(),
                None => {
                    let token = Arc::new(first_token(&self.root, account).await?);
                    tokio::spawn(renew(self.root.clone(), account.to_string(), token.clone()));
                    tokens.insert(account.to_string(), token.clone());
                    token
                }
            }
        };
        let rejected = token.clone();
        let layer = ServiceBuilder::new()
            .map_request(move |mut req: Request<Body>| {
                req.headers_mut().insert(AUTHORIZATION, token.header());
                req
            })
            .map_response(move |res: Response<_>| {
                if res.status() == StatusCode::UNAUTHORIZED {
                    rejected.rejected.notify_one();
                }
                res
            });
        Ok(self.anonymous.builder()?.with_layer(&layer).build())
    }
}

/// An account's current bearer token and when to renew it.
struct Token {
    current: std::sync::RwLock<Issued>,
    /// Signalled when the apiserver answers 401 to the token: renew now.
    rejected: Notify,
}

#[derive(Clone)]
struct Issued {
    header: HeaderValue,
    renew_after: Duration,
}

impl Token {
    fn header(&self) -> HeaderValue {
        self.issued().header
    }

    fn issued(&self) -> Issued {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The first token of `account`, retried briefly with backoff as upstream.
async fn first_token(root: &Client, account: &str) -> Result<Token, ClientBuilderError> {
    let mut delay = FIRST_RETRY;
    let mut attempt = 1;
    loop {
        match issue(root, account).await {
            Ok(issued) => {
                return Ok(Token {
                    current: std::sync::RwLock::new(issued),
                    rejected: Notify::new(),
                })
            }
            Err(err) if attempt >= FIRST_TOKEN_ATTEMPTS => return Err(err),
            Err(err) => {
                tracing::info!(%err, account, "getting a token failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
        }
    }
}

/// Renews `account`'s token each time its renewal point passes or the apiserver rejected it,
/// for the life of the process.
async fn renew(root: Client, account: String, token: Arc<Token>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(token.issued().renew_after) => {}
            () = token.rejected.notified() => {
                tracing::info!(account, "service account token rejected; renewing");
            }
        }
        let mut delay = FIRST_RETRY;
        loop {
            match issue(&root, &account).await {
                Ok(issued) => {
                    tracing::debug!(account, "renewed service account token");
                    *token.current.write().unwrap_or_else(|e| e.into_inner()) = issued;
                    tokio::time::sleep(MIN_RENEW_INTERVAL).await;
                    break;
                }
                Err(err) => {
                    tracing::warn!(%err, account, "renewing service account token");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_RENEW_RETRY);
                }
            }
        }
    }
}

/// Ensures the account exists and requests a token for it.
async fn issue(root: &Client, account: &str) -> Result<Issued, ClientBuilderError> {
    let accounts: Api<ServiceAccount> = Api::namespaced(root.clone(), NAMESPACE);
    ensure_account(&accounts, account).await.map_err(|source| {
        ClientBuilderError::ServiceAccount {
            name: account.to_string(),
            source,
        }
    })?;
    let request = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(EXPIRATION_SECONDS),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = accounts
        .create_token_request(account, &PostParams::default(), &request)
        .await
        .map_err(|source| ClientBuilderError::Token {
            name: account.to_string(),
            source,
        })?;
    let status = answer
        .status
        .ok_or_else(|| ClientBuilderError::NoToken(account.to_string()))?;
    let header = HeaderValue::from_str(&format!("Bearer {}", status.token))
        .map_err(|_| ClientBuilderError::NoToken(account.to_string()))?;
    let lifetime = status
        .expiration_timestamp
        .0
        .duration_since(jiff::Timestamp::now())
        .unsigned_abs();
    Ok(Issued {
        header,
        renew_after: renew_after(lifetime),
    })
}

/// Creates ServiceAccount `name` unless it exists (or a racing replica just created it).
async fn ensure_account(accounts: &Api<ServiceAccount>, name: &str) -> Result<(), kube::Error> {
    if accounts.get_opt(name).await?.is_some() {
        return Ok(());
    }
    let account = ServiceAccount {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(NAMESPACE.to_string()),
            ..Default::default()
        },
        ..Default::default()
    };
    match accounts.create(&PostParams::default(), &account).await {
        Ok(_) => Ok(()),
        Err(err) if crate::pods::is_conflict(&err) => Ok(()),
        Err(err) => Err(err),
    }
}

/// How long a token with `lifetime` left is used before it is renewed: all but the last
/// `LEEWAY_PERCENT` of its lifetime (taken as at least `MIN_LIFETIME`).
fn renew_after(lifetime: Duration) -> Duration {
    let lifetime = lifetime.max(MIN_LIFETIME);
    lifetime - lifetime * LEEWAY_PERCENT / 100
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_with_a_fifth_of_their_lifetime_left() {
        assert_eq!(
            renew_after(Duration::from_secs(3600)),
            Duration::from_secs(2880)
        );
        // A lifetime shortened by clock skew is taken as ten minutes.
        assert_eq!(
            renew_after(Duration::from_secs(5)),
            Duration::from_secs(480)
        );
    }
}
