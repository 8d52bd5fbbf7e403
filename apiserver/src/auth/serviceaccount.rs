//! Service-account tokens: bound, expiring JWTs issued by the TokenRequest API
//! (`serviceaccounts/<name>/token`), and their validation — as well as legacy tokens kept in
//! `kubernetes.io/service-account-token` secrets. A token is only good while the service
//! account (and the pod, secret or node it is bound to) still exists with the same UID.

use std::{collections::BTreeMap, time::Duration};

use base64::{engine::general_purpose::STANDARD, Engine};
use serde_json::{json, Value};

use super::{
    jwt::{self, SigningKey, VerifyingKey},
    options::AuthOptions,
    user::UserInfo,
    AuthError,
};
use crate::{
    errors::{ApiError, ApiResult},
    registry::{catalog, meta, store::Store},
    server::ApiServer,
};

/// The issuer of legacy (secret-based) tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";
/// TokenRequest's default and shortest lifetimes.
const DEFAULT_EXPIRATION: i64 = 3600;
const MIN_EXPIRATION: i64 = 600;

/// Issues and validates service-account tokens.
pub struct ServiceAccountTokens {
    signer: Option<SigningKey>,
    keys: Vec<VerifyingKey>,
    issuers: Vec<String>,
    pub audiences: Vec<String>,
    max_expiration: Duration,
    lookup: bool,
    jwks_uri: Option<String>,
}

fn lookup(server: &ApiServer, plural: &str, ns: &str, name: &str) -> Option<Value> {
    let def = catalog::find("", "v1", plural)?;
    let key = def.key(ns, name);
    let (obj, _) = server.cache(def).get(&key);
    serde_json::from_slice(&obj?.raw).ok()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl ServiceAccountTokens {
    /// `None` when no service-account key is configured.
    pub fn new(opts: &AuthOptions) -> Result<Option<ServiceAccountTokens>, AuthError> {
        let signer = opts
            .service_account_signing_key_file
            .as_deref()
            .map(SigningKey::load)
            .transpose()?;
        let mut keys = Vec::new();
        for path in &opts.service_account_key_files {
            keys.extend(VerifyingKey::load_all(path)?);
        }
        if let Some(s) = &signer {
            let k = s.verifying_key();
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        if keys.is_empty() {
            return Ok(None);
        }
        if signer.is_some() && opts.service_account_issuers.is_empty() {
            return Err(AuthError::Flags(
                "--service-account-issuer is required with --service-account-signing-key-file"
                    .into(),
            ));
        }
        let audiences = if opts.api_audiences.is_empty() {
            opts.service_account_issuers.clone()
        } else {
            opts.api_audiences.clone()
        };
        Ok(Some(ServiceAccountTokens {
            signer,
            keys,
            issuers: opts.service_account_issuers.clone(),
            audiences,
            max_expiration: opts.service_account_max_token_expiration,
            lookup: opts.service_account_lookup,
            jwks_uri: opts.service_account_jwks_uri.clone(),
        }))
    }

    /// The OpenID provider configuration of the issuer, when it is an https URL (as
    /// upstream, which only then serves issuer discovery).
    pub fn openid_configuration(&self) -> Option<Value> {
        let issuer = self.issuers.first().filter(|i| i.starts_with("https://"))?;
        let jwks_uri = self
            .jwks_uri
            .clone()
            .unwrap_or_else(|| format!("{}/openid/v1/jwks", issuer.trim_end_matches('/')));
        let mut algs: Vec<&str> = self.keys.iter().map(|k| k.alg).collect();
        algs.sort_unstable();
        algs.dedup();
        Some(json!({
            "issuer": issuer,
            "jwks_uri": jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": algs,
        }))
    }

    /// The verifying keys as a JWK set.
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.keys.iter().filter_map(VerifyingKey::jwk).collect::<Vec<_>>() })
    }

    /// `Ok(None)` for tokens this authenticator does not own (not a JWT, or another issuer);
    /// an error for owned tokens that are not valid. `audiences` are the ones the caller
    /// accepts (the API audiences unless a TokenReview names others).
    pub fn authenticate(
        &self,
        server: &ApiServer,
        token: &str,
        audiences: &[String],
    ) -> Result<Option<UserInfo>, String> {
        let Ok(peeked) = jwt::peek_claims(token) else {
            return Ok(None);
        };
        let issuer = peeked["iss"].as_str().unwrap_or_default();
        let legacy = issuer == LEGACY_ISSUER;
        if !legacy && !self.issuers.iter().any(|i| i == issuer) {
            return Ok(None);
        }
        let claims = jwt::verify(token, &self.keys).map_err(|e| e.to_string())?;
        if legacy {
            self.legacy(server, token, &claims).map(Some)
        } else {
            self.bound(server, &claims, audiences).map(Some)
        }
    }

    fn legacy(&self, server: &ApiServer, token: &str, claims: &Value) -> Result<UserInfo, String> {
        let claim = |k: &str| {
            claims[format!("kubernetes.io/serviceaccount/{k}")]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        let (ns, name, uid, secret) = (
            claim("namespace"),
            claim("service-account.name"),
            claim("service-account.uid"),
            claim("secret.name"),
        );
        if ns.is_empty() || name.is_empty() || secret.is_empty() {
            return Err("token lacks the service-account claims".into());
        }
        if self.lookup {
            let s = lookup(server, "secrets", &ns, &secret)
                .ok_or_else(|| format!("secret {ns}/{secret} not found"))?;
            let stored = s["data"]["token"]
                .as_str()
                .and_then(|t| STANDARD.decode(t).ok())
                .unwrap_or_default();
            if stored != token.as_bytes() {
                return Err(format!("token does not match secret {ns}/{secret}"));
            }
            self.check_service_account(server, &ns, &name, &uid)?;
        }
        Ok(UserInfo::service_account(&ns, &name, &uid))
    }

    fn check_service_account(
        &self,
        server: &ApiServer,
        ns: &str,
        name: &str,
        uid: &str,
    ) -> Result<(), String> {
        let sa = lookup(server, "serviceaccounts", ns, name)
            .ok_or_else(|| format!("serviceaccounts \"{name}\" not found"))?;
        if !uid.is_empty() && meta::uid(&sa) != uid {
            return Err(format!(
                "service account UID ({uid}) does not match claim ({})",
                meta::uid(&sa)
            ));
        }
        Ok(())
    }

    fn bound(
        &self,
        server: &ApiServer,
        claims: &Value,
        audiences: &[String],
    ) -> Result<UserInfo, String> {
        let now = now();
        let exp = claims["exp"].as_i64().ok_or("token has no expiry")?;
        if now >= exp {
            return Err("token has expired".into());
        }
        if claims["nbf"].as_i64().is_some_and(|nbf| now < nbf) {
            return Err("token is not valid yet".into());
        }
        let token_audiences: Vec<&str> = match &claims["aud"] {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !token_audiences
            .iter()
            .any(|a| audiences.iter().any(|w| w == a))
        {
            return Err("token audiences are not accepted".into());
        }
        let k = &claims["kubernetes.io"];
        let ns = k["namespace"].as_str().unwrap_or_default();
        let name = k["serviceaccount"]["name"].as_str().unwrap_or_default();
        let uid = k["serviceaccount"]["uid"].as_str().unwrap_or_default();
        if ns.is_empty() || name.is_empty() {
            return Err("token lacks the service-account claims".into());
        }
        let mut user = UserInfo::service_account(ns, name, uid);
        let mut extra = BTreeMap::new();
        if let Some(jti) = claims["jti"].as_str() {
            extra.insert(
                "authentication.kubernetes.io/credential-id".to_string(),
                vec![format!("JTI={jti}")],
            );
        }
        if self.lookup {
            self.check_service_account(server, ns, name, uid)?;
        }
        for (kind, plural, scoped) in [
            ("pod", "pods", true),
            ("secret", "secrets", true),
            ("node", "nodes", false),
        ] {
            let bound = &k[kind];
            let Some(bound_name) = bound["name"].as_str() else {
                continue;
            };
            let bound_uid = bound["uid"].as_str().unwrap_or_default();
            // A pod-bound token names its pod's node for information; only a token bound to
            // the node itself lives and dies with it.
            let checked = kind != "node" || k["pod"].is_null();
            if self.lookup && checked {
                let obj = lookup(server, plural, if scoped { ns } else { "" }, bound_name)
                    .ok_or_else(|| format!("{plural} \"{bound_name}\" not found"))?;
                if meta::uid(&obj) != bound_uid {
                    return Err(format!(
                        "{plural} \"{bound_name}\" UID does not match the token's"
                    ));
                }
                if obj["metadata"]["deletionTimestamp"].is_string() && kind != "node" {
                    return Err(format!("{plural} \"{bound_name}\" is being deleted"));
                }
            }
            if kind != "secret" {
                extra.insert(
                    format!("authentication.kubernetes.io/{kind}-name"),
                    vec![bound_name.to_string()],
                );
                extra.insert(
                    format!("authentication.kubernetes.io/{kind}-uid"),
                    vec![bound_uid.to_string()],
                );
            }
        }
        user.extra = extra;
        Ok(user)
    }

    /// The TokenRequest API: a token for `namespace/name` as `request` (an
    /// `authentication.k8s.io/v1 TokenRequest`) asks.
    pub async fn issue(
        &self,
        server: &ApiServer,
        namespace: &str,
        name: &str,
        request: &Value,
    ) -> ApiResult<Value> {
        let signer = self
            .signer
            .as_ref()
            .ok_or_else(|| ApiError::not_found_path("serviceaccounts/token"))?;
        let sa_def = def("serviceaccounts")?;
        let (sa, _) = Store::new(server, sa_def).read(namespace, name).await?;
        let spec = &request["spec"];
        let mut expiration = spec["expirationSeconds"]
            .as_i64()
            .unwrap_or(DEFAULT_EXPIRATION);
        if expiration < MIN_EXPIRATION || expiration > i64::from(u32::MAX) {
            return Err(invalid_request(
                name,
                "spec.expirationSeconds",
                format!("Invalid value: {expiration}: may not specify a duration less than 10 minutes or longer than 2^32 seconds"),
            ));
        }
        let max = self.max_expiration.as_secs() as i64;
        if max > 0 && expiration > max {
            expiration = max;
        }
        let audiences: Vec<String> = match spec["audiences"].as_array() {
            Some(a) if !a.is_empty() => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => self.audiences.clone(),
        };
        let iat = now();
        let jti = uuid::Uuid::new_v4().to_string();
        let mut k8s = json!({
            "namespace": namespace,
            "serviceaccount": { "name": name, "uid": meta::uid(&sa) },
        });
        let bound = &spec["boundObjectRef"];
        if let Some(kind) = bound["kind"].as_str() {
            let bound_name = bound["name"].as_str().unwrap_or_default();
            let (claim, plural, ns) = match kind {
                "Pod" => ("pod", "pods", namespace),
                "Secret" => ("secret", "secrets", namespace),
                "Node" => ("node", "nodes", ""),
                other => {
                    return Err(invalid_request(
                        name,
                        "spec.boundObjectRef.kind",
                        format!("Unsupported value: \"{other}\": supported values: \"Pod\", \"Secret\", \"Node\""),
                    ))
                }
            };
            let (obj, _) = Store::new(server, def(plural)?)
                .read(ns, bound_name)
                .await?;
            let uid = meta::uid(&obj);
            if let Some(want) = bound["uid"].as_str().filter(|u| !u.is_empty()) {
                if want != uid {
                    return Err(ApiError::conflict(
                        def(plural)?,
                        bound_name,
                        &format!("the UID in the bound object reference ({want}) does not match the UID in record ({uid}). The object might have been deleted and then recreated"),
                    ));
                }
            }
            k8s[claim] = json!({ "name": bound_name, "uid": uid });
            if kind == "Pod" {
                if let Some(node) = obj["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
                    let node_uid = lookup(server, "nodes", "", node)
                        .map(|n| meta::uid(&n).to_string())
                        .unwrap_or_default();
                    k8s["node"] = json!({ "name": node, "uid": node_uid });
                }
            }
        }
        let claims = json!({
            "iss": self.issuers.first(),
            "sub": format!("system:serviceaccount:{namespace}:{name}"),
            "aud": audiences,
            "exp": iat + expiration,
            "iat": iat,
            "nbf": iat,
            "jti": jti,
            "kubernetes.io": k8s,
        });
        let token = signer
            .sign(&claims)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let expires = chrono::DateTime::from_timestamp(iat + expiration, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut out_spec = json!({ "audiences": audiences, "expirationSeconds": expiration });
        if !bound.is_null() {
            out_spec["boundObjectRef"] = bound.clone();
        }
        Ok(json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "creationTimestamp": chrono::DateTime::from_timestamp(iat, 0).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            },
            "spec": out_spec,
            "status": { "token": token, "expirationTimestamp": expires },
        }))
    }
}

fn def(plural: &str) -> ApiResult<&'static crate::registry::ResourceDef> {
    catalog::find("", "v1", plural)
        .ok_or_else(|| ApiError::internal(format!("no resource {plural}")))
}

/// A 422 about a TokenRequest (which has no storage, hence no catalog entry).
fn invalid_request(name: &str, field: &str, message: String) -> ApiError {
    ApiError {
        code: 422,
        reason: "Invalid",
        message: format!(
            "TokenRequest.authentication.k8s.io \"{name}\" is invalid: {field}: {message}"
        ),
        details: Some(json!({
            "name": name,
            "group": "authentication.k8s.io",
            "kind": "TokenRequest",
            "causes": [{ "reason": "FieldValueInvalid", "message": message, "field": field }],
        })),
        retry_after: None,
    }
}
