//! Flags of authentication, authorization, audit and request limits, with upstream's names.

use std::path::PathBuf;

use clap::Args;

/// The security flags of kube-apiserver.
#[derive(Debug, Clone, Args)]
pub struct AuthOptions {
    /// PEM bundle of CAs that sign client certificates; a verified certificate authenticates
    /// as its Common Name, with its Organizations as groups.
    #[arg(long = "client-ca-file")]
    pub client_ca_file: Option<PathBuf>,

    /// CSV file of static bearer tokens: token,user,uid,"group1,group2".
    #[arg(long = "token-auth-file")]
    pub token_auth_file: Option<PathBuf>,

    /// Lets requests without credentials in as system:anonymous. With an authorization mode
    /// other than AlwaysAllow, only the public-info paths (/healthz, /livez, /readyz,
    /// /version) are served to them; anything else is 401.
    #[arg(long = "anonymous-auth", default_value_t = true, action = clap::ArgAction::Set)]
    pub anonymous_auth: bool,

    /// Ordered authorizers: AlwaysAllow, AlwaysDeny, Node, RBAC.
    #[arg(
        long = "authorization-mode",
        value_delimiter = ',',
        default_value = "AlwaysAllow"
    )]
    pub authorization_mode: Vec<String>,

    /// Files with the public keys (or private keys, or certificates) that verify
    /// service-account tokens; the signing key's public half is always included.
    #[arg(long = "service-account-key-file")]
    pub service_account_key_files: Vec<PathBuf>,

    /// Private key (PKCS#8 RSA or P-256, or PKCS#1 RSA) that signs service-account tokens.
    #[arg(long = "service-account-signing-key-file")]
    pub service_account_signing_key_file: Option<PathBuf>,

    /// Issuers of service-account tokens; the first one issues, all are accepted.
    #[arg(long = "service-account-issuer")]
    pub service_account_issuers: Vec<String>,

    /// The JWKS URI the issuer discovery document names; defaults to
    /// `<issuer>/openid/v1/jwks`.
    #[arg(long = "service-account-jwks-uri")]
    pub service_account_jwks_uri: Option<String>,

    /// Audiences the API accepts tokens for; defaults to the issuers.
    #[arg(long = "api-audiences", value_delimiter = ',')]
    pub api_audiences: Vec<String>,

    /// The longest lifetime of a token the TokenRequest API issues; 0 for no cap.
    #[arg(long = "service-account-max-token-expiration", default_value = "0", value_parser = crate::options::parse_duration)]
    pub service_account_max_token_expiration: std::time::Duration,

    /// Checks that the service account (and the pod or secret a token is bound to) still
    /// exists when authenticating its tokens.
    #[arg(long = "service-account-lookup", default_value_t = true, action = clap::ArgAction::Set)]
    pub service_account_lookup: bool,

    /// Where audit events are written as JSON lines; "-" for standard output.
    #[arg(long = "audit-log-path")]
    pub audit_log_path: Option<PathBuf>,

    /// The audit.k8s.io/v1 Policy that sets each request's audit level.
    #[arg(long = "audit-policy-file")]
    pub audit_policy_file: Option<PathBuf>,

    /// Most non-mutating requests served at once (long-running requests aside); 0 for no limit.
    #[arg(long = "max-requests-inflight", default_value_t = 400)]
    pub max_requests_inflight: usize,

    /// Most mutating requests served at once; 0 for no limit.
    #[arg(long = "max-mutating-requests-inflight", default_value_t = 200)]
    pub max_mutating_requests_inflight: usize,
}
