//! Authentication and authorization of the node API, as upstream's kubelet delegates them: a
//! client certificate (verified by TLS against `authentication.x509.clientCAFile`) or a bearer
//! token checked with a TokenReview names the user; anonymous requests are refused unless
//! `authentication.anonymous.enabled`; with `authorization.mode: Webhook` a SubjectAccessReview
//! on the node's `nodes/<subresource>` decides, the subresource following the request path.

use std::{
    collections::{BTreeMap, HashMap},
    hash::Hash,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::{Request, State},
    http::{header, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use component_base::serve::PeerCertificates;
use k8s_openapi::api::{
    authentication::v1::{TokenReview, TokenReviewSpec},
    authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
};
use kube::{api::PostParams, Api};

use crate::options::{KubeletAuthentication, KubeletAuthorization};

/// Why the node API's authentication could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("no client provided, cannot use webhook authentication")]
    WebhookAuthentication,
    #[error("no client provided, cannot use webhook authorization")]
    WebhookAuthorization,
    #[error("unknown authorization mode {0:?}: want AlwaysAllow or Webhook")]
    Mode(String),
}

/// A caller of the node API.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl User {
    fn anonymous() -> User {
        User {
            name: "system:anonymous".into(),
            uid: String::new(),
            groups: vec!["system:unauthenticated".into()],
            extra: BTreeMap::new(),
        }
    }
}

/// What a request asks for, in SubjectAccessReview terms.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attributes {
    pub verb: &'static str,
    pub subresource: &'static str,
}

/// A small map whose entries expire (webhook answers are cached like upstream's).
struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    fn new() -> Self {
        TtlCache {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(expires, _)| *expires > Instant::now())
            .map(|(_, v)| v.clone())
    }

    fn put(&self, key: K, value: V, ttl: Duration) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= 4096 {
            let now = Instant::now();
            entries.retain(|_, (expires, _)| *expires > now);
        }
        entries.insert(key, (Instant::now() + ttl, value));
    }
}

enum Authorizer {
    AlwaysAllow,
    Webhook {
        client: kube::Client,
        allowed_ttl: Duration,
        denied_ttl: Duration,
        cache: TtlCache<(String, String, Vec<String>, Attributes), bool>,
    },
}

/// The node API's authenticator and authorizer.
pub struct NodeAuth {
    node_name: String,
    anonymous: bool,
    token_reviews: Option<(kube::Client, Duration)>,
    token_cache: TtlCache<String, Option<User>>,
    authorizer: Authorizer,
}

impl NodeAuth {
    /// Builds the node API's auth from the configuration; webhooks need an apiserver client.
    pub fn new(
        node_name: &str,
        client: Option<&kube::Client>,
        authn: &KubeletAuthentication,
        authz: &KubeletAuthorization,
    ) -> Result<NodeAuth, AuthConfigError> {
        let token_reviews = match (authn.webhook.enabled, client) {
            (false, _) => None,
            (true, Some(c)) => Some((c.clone(), authn.webhook.cache_ttl)),
            (true, None) => return Err(AuthConfigError::WebhookAuthentication),
        };
        let authorizer = match (authz.mode.as_str(), client) {
            ("AlwaysAllow", _) => Authorizer::AlwaysAllow,
            ("Webhook", Some(c)) => Authorizer::Webhook {
                client: c.clone(),
                allowed_ttl: authz.webhook.cache_authorized_ttl,
                denied_ttl: authz.webhook.cache_unauthorized_ttl,
                cache: TtlCache::new(),
            },
            ("Webhook", None) => return Err(AuthConfigError::WebhookAuthorization),
            (other, _) => return Err(AuthConfigError::Mode(other.to_string())),
        };
        Ok(NodeAuth {
            node_name: node_name.to_string(),
            anonymous: authn.anonymous.enabled,
            token_reviews,
            token_cache: TtlCache::new(),
            authorizer,
        })
    }

    /// The caller, or `None` when the request carries no acceptable credentials.
    async fn authenticate(
        &self,
        certs: Option<PeerCertificates>,
        token: Option<String>,
    ) -> Option<User> {
        if let Some(PeerCertificates(chain)) = certs {
            if let Some((name, groups)) = chain
                .first()
                .and_then(component_base::tls::certificate_identity)
            {
                return Some(User {
                    name,
                    uid: String::new(),
                    groups,
                    extra: BTreeMap::new(),
                });
            }
        }
        match (token, &self.token_reviews) {
            (Some(token), Some((client, ttl))) => {
                if let Some(cached) = self.token_cache.get(&token) {
                    return cached;
                }
                let user = review_token(client, &token).await.ok()?;
                self.token_cache.put(token, user.clone(), *ttl);
                user
            }
            _ => self.anonymous.then(User::anonymous),
        }
    }

    /// Whether `user` may do what `attrs` describe on this node; `Err` when the apiserver could
    /// not be asked.
    async fn authorize(&self, user: &User, attrs: &Attributes) -> Result<bool, kube::Error> {
        let Authorizer::Webhook {
            client,
            allowed_ttl,
            denied_ttl,
            cache,
        } = &self.authorizer
        else {
            return Ok(true);
        };
        let key = (
            user.name.clone(),
            user.uid.clone(),
            user.groups.clone(),
            attrs.clone(),
        );
        if let Some(allowed) = cache.get(&key) {
            return Ok(allowed);
        }
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.name.clone()),
                uid: Some(user.uid.clone()).filter(|u| !u.is_empty()),
                groups: Some(user.groups.clone()),
                extra: Some(user.extra.clone()).filter(|e| !e.is_empty()),
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(attrs.verb.to_string()),
                    group: Some(String::new()),
                    version: Some("v1".into()),
                    resource: Some("nodes".into()),
                    subresource: Some(attrs.subresource.to_string()),
                    name: Some(self.node_name.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = Api::<SubjectAccessReview>::all(client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        let allowed = answer.status.is_some_and(|s| s.allowed);
        cache.put(
            key,
            allowed,
            if allowed { *allowed_ttl } else { *denied_ttl },
        );
        Ok(allowed)
    }
}

/// Asks the apiserver who a bearer token belongs to; `Ok(None)` when it names nobody.
async fn review_token(client: &kube::Client, token: &str) -> Result<Option<User>, kube::Error> {
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.to_string()),
            audiences: None,
        },
        ..Default::default()
    };
    let answer = Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    let Some(status) = answer.status.filter(|s| s.authenticated == Some(true)) else {
        return Ok(None);
    };
    Ok(status.user.and_then(|u| {
        Some(User {
            name: u.username.filter(|n| !n.is_empty())?,
            uid: u.uid.unwrap_or_default(),
            groups: u.groups.unwrap_or_default(),
            extra: u.extra.unwrap_or_default(),
        })
    }))
}

/// The verb and `nodes` subresource of a node API request, as upstream maps them: stats,
/// metrics, log and checkpoint have their own subresources, everything else (container logs,
/// exec, attach, port-forward) is `proxy`.
pub fn attributes(method: &Method, path: &str) -> Attributes {
    let verb = match *method {
        Method::POST => "create",
        Method::GET | Method::HEAD => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    };
    let under = |prefix: &str| {
        path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    let subresource = if under("/stats") {
        "stats"
    } else if under("/metrics") {
        "metrics"
    } else if under("/logs") {
        "log"
    } else if under("/checkpoint") {
        "checkpoint"
    } else if under("/pods") {
        "pods"
    } else if under("/healthz") {
        "healthz"
    } else {
        "proxy"
    };
    Attributes { verb, subresource }
}

/// The middleware in front of every node API route.
pub async fn filter(State(auth): State<Arc<NodeAuth>>, req: Request, next: Next) -> Response {
    let certs = req.extensions().get::<PeerCertificates>().cloned();
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_string())
        .filter(|t| !t.is_empty());
    let Some(user) = auth.authenticate(certs, token).await else {
        return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
    };
    let attrs = attributes(req.method(), req.uri().path());
    // Fine-grained subresources (pods, healthz) fall back to proxy, as upstream's
    // KubeletFineGrainedAuthz does.
    let mut tried = vec![attrs.clone()];
    if matches!(attrs.subresource, "pods" | "healthz") {
        tried.push(Attributes {
            verb: attrs.verb,
            subresource: "proxy",
        });
    }
    for a in &tried {
        match auth.authorize(&user, a).await {
            Ok(true) => return next.run(req).await,
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(user = %user.name, %err, "authorizing a node API request");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("Authorization error (user={})", user.name),
                )
                    .into_response();
            }
        }
    }
    let message = format!(
        "Forbidden (user={}, verb={}, resource=nodes, subresource(s)=[{}])",
        user.name,
        attrs.verb,
        tried
            .iter()
            .map(|a| a.subresource)
            .collect::<Vec<_>>()
            .join(" ")
    );
    (StatusCode::FORBIDDEN, message).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_node_subresources() {
        let a = |m: Method, p: &str| {
            let a = attributes(&m, p);
            (a.verb, a.subresource)
        };
        assert_eq!(a(Method::GET, "/stats/summary"), ("get", "stats"));
        assert_eq!(a(Method::GET, "/metrics"), ("get", "metrics"));
        assert_eq!(a(Method::GET, "/metrics/resource"), ("get", "metrics"));
        assert_eq!(a(Method::GET, "/pods"), ("get", "pods"));
        assert_eq!(a(Method::GET, "/healthz"), ("get", "healthz"));
        assert_eq!(a(Method::GET, "/containerLogs/ns/p/c"), ("get", "proxy"));
        assert_eq!(a(Method::POST, "/exec/ns/p/c"), ("create", "proxy"));
        assert_eq!(a(Method::POST, "/portforward/ns/p"), ("create", "proxy"));
        assert_eq!(a(Method::GET, "/metricsfoo"), ("get", "proxy"));
    }

    #[test]
    fn standalone_needs_webhooks_off() {
        let authn = KubeletAuthentication::default();
        let authz = KubeletAuthorization::default();
        assert!(matches!(
            NodeAuth::new("n", None, &authn, &authz),
            Err(AuthConfigError::WebhookAuthentication)
        ));
        let mut authn = authn;
        authn.webhook.enabled = false;
        assert!(matches!(
            NodeAuth::new("n", None, &authn, &authz),
            Err(AuthConfigError::WebhookAuthorization)
        ));
        let authz = KubeletAuthorization {
            mode: "AlwaysAllow".into(),
            ..Default::default()
        };
        assert!(NodeAuth::new("n", None, &authn, &authz).is_ok());
    }

    #[test]
    fn cache_entries_expire() {
        let cache = TtlCache::new();
        cache.put("a", 1, Duration::from_secs(60));
        cache.put("b", 2, Duration::ZERO);
        assert_eq!(cache.get(&"a"), Some(1));
        assert_eq!(cache.get(&"b"), None);
    }
}
