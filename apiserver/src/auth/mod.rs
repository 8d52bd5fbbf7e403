//! Authentication, authorization, audit and request limits: who may do what, and a record
//! of what they did. Everything here sits in front of the handlers as one filter layer
//! ([`wrap`]) plus the review APIs and TokenRequest, which are served here.

pub mod audit;
pub mod authenticator;
pub mod authorizer;
pub mod bootstrap_policy;
pub mod escalation;
pub mod filters;
pub mod impersonation;
pub mod inflight;
pub mod jwt;
pub mod node;
pub mod node_restriction;
pub mod options;
pub mod rbac;
pub mod reviews;
pub mod serviceaccount;
pub mod token_file;
pub mod user;
pub mod x509;

use std::{path::PathBuf, sync::Arc};

use axum::Router;

use crate::{errors::ApiResult, server::ApiServer};

pub use options::AuthOptions;
pub use user::UserInfo;

/// Why the security configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {why}")]
    Invalid { path: PathBuf, why: String },
    #[error("{0}")]
    Flags(String),
    #[error("signing a token failed")]
    Sign,
}

/// The configured security of the server.
pub struct Auth {
    pub server: Arc<ApiServer>,
    pub authenticator: authenticator::Authenticator,
    pub authorizer: authorizer::Authorizer,
    pub audit: Option<Arc<audit::Audit>>,
    pub inflight: inflight::Inflight,
}

impl Auth {
    pub fn new(server: Arc<ApiServer>, opts: &AuthOptions) -> Result<Auth, AuthError> {
        let authorizer = authorizer::Authorizer::new(&opts.authorization_mode)?;
        let open = opts.authorization_mode.iter().all(|m| m == "AlwaysAllow");
        let inflight = inflight::Inflight::new(
            opts.max_requests_inflight,
            opts.max_mutating_requests_inflight,
            &server.metrics.current_inflight,
        );
        Ok(Auth {
            server,
            authenticator: authenticator::Authenticator::new(opts, !open)?,
            authorizer,
            audit: audit::Audit::new(opts)?.map(Arc::new),
            inflight,
        })
    }

    /// Creates upstream's bootstrap RBAC policy when RBAC authorizes requests.
    pub async fn bootstrap(&self) -> ApiResult<()> {
        if self.authorizer.has_rbac() {
            bootstrap_policy::ensure(&self.server).await?;
        }
        Ok(())
    }
}

/// Puts the security filters in front of `router` and adds the review APIs.
pub fn wrap(router: Router, auth: Arc<Auth>) -> Router {
    router
        .merge(reviews::routes(auth.clone()))
        .layer(axum::middleware::from_fn_with_state(auth, filters::filter))
}
