//! The authentication chain, in upstream's order: client certificate, static token,
//! service-account token; then anonymous. A presented credential that no authenticator
//! accepts is a 401, never anonymous.

use axum::http::{header, request::Parts};
use component_base::serve::PeerCertificates;

use super::{
    options::AuthOptions, serviceaccount::ServiceAccountTokens, token_file::TokenFile,
    user::UserInfo, x509, AuthError,
};
use crate::server::ApiServer;

/// Paths anonymous requests may reach when an authorizer other than AlwaysAllow is on
/// (the paths of upstream's system:public-info-viewer role).
pub const PUBLIC_PATHS: &[&str] = &["/healthz", "/livez", "/readyz", "/version", "/version/"];

/// The configured authenticators.
pub struct Authenticator {
    tokens: Option<TokenFile>,
    pub service_accounts: Option<ServiceAccountTokens>,
    anonymous: bool,
    anonymous_public_only: bool,
}

impl Authenticator {
    pub fn new(opts: &AuthOptions, public_only: bool) -> Result<Authenticator, AuthError> {
        Ok(Authenticator {
            tokens: opts
                .token_auth_file
                .as_deref()
                .map(TokenFile::load)
                .transpose()?,
            service_accounts: ServiceAccountTokens::new(opts)?,
            anonymous: opts.anonymous_auth,
            anonymous_public_only: public_only,
        })
    }

    /// Whether bearer tokens are looked at at all (with no token authenticator, upstream
    /// ignores the header and the request is anonymous).
    fn checks_tokens(&self) -> bool {
        self.tokens.is_some() || self.service_accounts.is_some()
    }

    /// The user of a bearer token; `Err` when it is not valid, `Ok(None)` when no
    /// authenticator knows it.
    pub fn authenticate_token(
        &self,
        server: &ApiServer,
        token: &str,
        audiences: Option<&[String]>,
    ) -> Result<Option<UserInfo>, String> {
        if let Some(user) = self.tokens.as_ref().and_then(|t| t.authenticate(token)) {
            return Ok(Some(user));
        }
        match &self.service_accounts {
            Some(sa) => sa.authenticate(server, token, audiences.unwrap_or(&sa.audiences)),
            None => Ok(None),
        }
    }

    /// Authenticates a request; `Err` carries why it is a 401.
    pub fn authenticate(&self, server: &ApiServer, parts: &Parts) -> Result<UserInfo, String> {
        if let Some(PeerCertificates(chain)) = parts.extensions.get::<PeerCertificates>() {
            if let Some(user) = chain.first().and_then(x509::user) {
                return Ok(user.authenticated());
            }
        }
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| token.trim().to_string())
            })
            .filter(|t| !t.is_empty());
        if let (Some(token), true) = (bearer, self.checks_tokens()) {
            return match self.authenticate_token(server, &token, None) {
                Ok(Some(user)) => Ok(user.authenticated()),
                Ok(None) => Err("invalid bearer token".into()),
                Err(why) => Err(format!("invalid bearer token, {why}")),
            };
        }
        let path = parts.uri.path();
        if self.anonymous && (!self.anonymous_public_only || PUBLIC_PATHS.contains(&path)) {
            return Ok(UserInfo::anonymous());
        }
        Err("no credentials".into())
    }
}
