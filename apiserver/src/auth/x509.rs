//! Client-certificate authentication: the TLS layer has already verified the chain against
//! `--client-ca-file`; the leaf's Common Name is the user and its Organizations the groups.

use rustls::pki_types::CertificateDer;

use super::user::UserInfo;

/// The user a verified client certificate names; `None` when it names nobody.
pub fn user(leaf: &CertificateDer<'_>) -> Option<UserInfo> {
    let (name, groups) = component_base::tls::certificate_identity(leaf)?;
    Some(UserInfo {
        name,
        groups,
        ..Default::default()
    })
}
