//! Impersonation: `Impersonate-User`, `Impersonate-Group`, `Impersonate-Uid` and
//! `Impersonate-Extra-<key>` headers let a user holding the `impersonate` verb on those
//! users, groups, uids and extras act as someone else (`kubectl --as`).

use std::collections::BTreeMap;

use axum::http::HeaderMap;

use super::{
    authorizer::{forbidden, Attributes, Authorizer},
    user::{UserInfo, ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, ANONYMOUS, SERVICE_ACCOUNTS},
};
use crate::{errors::ApiError, server::ApiServer};

const USER: &str = "impersonate-user";
const GROUP: &str = "impersonate-group";
const UID: &str = "impersonate-uid";
const EXTRA: &str = "impersonate-extra-";

/// Whether the request asks to impersonate.
pub fn requested(headers: &HeaderMap) -> bool {
    headers
        .keys()
        .any(|k| k.as_str().starts_with("impersonate-"))
}

/// Strips the impersonation headers (they must not reach handlers).
pub fn strip(headers: &mut HeaderMap) {
    let keys: Vec<_> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("impersonate-"))
        .cloned()
        .collect();
    for k in keys {
        headers.remove(k);
    }
}

/// The impersonated user, after checking `requester` may impersonate each part of it.
pub fn impersonate(
    server: &ApiServer,
    authorizer: &Authorizer,
    requester: &UserInfo,
    headers: &HeaderMap,
) -> Result<UserInfo, ApiError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    };
    let Some(name) = values(USER).into_iter().next() else {
        return Err(ApiError::bad_request(
            "requested impersonation without a user (Impersonate-User)",
        ));
    };
    let check = |attrs: Attributes| -> Result<(), ApiError> {
        let d = authorizer.authorize(server, &attrs);
        if d.allowed() {
            Ok(())
        } else {
            Err(forbidden(&attrs, d.reason()))
        }
    };
    let base = |resource: &str, group: &str, name: &str, namespace: &str| Attributes {
        user: requester.clone(),
        verb: "impersonate".into(),
        resource_request: true,
        api_group: group.into(),
        resource: resource.into(),
        name: name.into(),
        namespace: namespace.into(),
        ..Default::default()
    };
    let mut user = match name
        .strip_prefix(super::user::SERVICE_ACCOUNT_PREFIX)
        .and_then(|r| r.split_once(':'))
    {
        Some((ns, sa)) => {
            check(base("serviceaccounts", "", sa, ns))?;
            UserInfo::service_account(ns, sa, "")
        }
        None => {
            check(base("users", "", &name, ""))?;
            UserInfo {
                name: name.clone(),
                ..Default::default()
            }
        }
    };
    for g in values(GROUP) {
        check(base("groups", "", &g, ""))?;
        if !user.groups.contains(&g) {
            user.groups.push(g);
        }
    }
    if let Some(uid) = values(UID).into_iter().next() {
        check(base("uids", "authentication.k8s.io", &uid, ""))?;
        user.uid = uid;
    }
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in headers {
        if let Some(key) = k.as_str().strip_prefix(EXTRA) {
            let key = percent_encoding::percent_decode_str(key)
                .decode_utf8_lossy()
                .to_string();
            let value = v.to_str().unwrap_or_default().to_string();
            check(Attributes {
                subresource: key.clone(),
                ..base("userextras", "authentication.k8s.io", &value, "")
            })?;
            extra.entry(key).or_default().push(value);
        }
    }
    user.extra = extra;
    if user.name == ANONYMOUS {
        if !user.in_group(ALL_UNAUTHENTICATED) {
            user.groups.push(ALL_UNAUTHENTICATED.into());
        }
    } else if !user.in_group(ALL_AUTHENTICATED) {
        user.groups.push(ALL_AUTHENTICATED.into());
    }
    if user.service_account_parts().is_some() && !user.in_group(SERVICE_ACCOUNTS) {
        user.groups.push(SERVICE_ACCOUNTS.into());
    }
    Ok(user)
}
