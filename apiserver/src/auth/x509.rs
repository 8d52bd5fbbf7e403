//! Client-certificate authentication: the TLS layer has already verified the chain against
//! `--client-ca-file`; the leaf's Common Name is the user and its Organizations the groups.

use rustls::pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::user::UserInfo;

/// The user a verified client certificate names; `None` when it names nobody.
pub fn user(leaf: &CertificateDer<'_>) -> Option<UserInfo> {
    let (_, cert) = X509Certificate::from_der(leaf.as_ref()).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())?
        .to_string();
    if name.is_empty() {
        return None;
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    Some(UserInfo {
        name,
        groups,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

    #[test]
    fn common_name_and_organizations() {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "system:node:n1");
        dn.push(DnType::OrganizationName, "system:nodes");
        params.distinguished_name = dn;
        let cert = params.self_signed(&key).unwrap();
        let u = user(cert.der()).unwrap();
        assert_eq!(u.name, "system:node:n1");
        assert_eq!(u.groups, vec!["system:nodes"]);
    }
}
