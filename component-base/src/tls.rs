//! TLS serving material: loading a certificate and key, or generating a self-signed pair in a
//! certificate directory the way upstream components do when no `--tls-cert-file` is given.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::{
    pki_types::{CertificateDer, PrivateKeyDer},
    ServerConfig,
};

/// Why TLS material could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key")]
    NoKey { path: PathBuf },
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("building the TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("building the client certificate verifier: {0}")]
    ClientVerifier(String),
}

/// The crypto provider every ferrokube TLS endpoint uses (one crypto stack for the workspace).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads every certificate of a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// Reads the first private key of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .ok()
        .flatten()
        .ok_or_else(|| TlsError::NoKey {
            path: path.to_path_buf(),
        })
}

/// A server configuration offering HTTP/2 and HTTP/1.1 with the given certificate and key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    server_config_with_client_ca(cert, key, None)
}

/// Like [`server_config`], and with `client_ca` also asks clients for a certificate signed by
/// one of the CAs in that PEM bundle. Clients without a certificate are still let in (they
/// authenticate otherwise, or are anonymous); a certificate that does not verify fails the
/// handshake.
pub fn server_config_with_client_ca(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in load_certs(path)? {
                roots.add(ca)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                roots.into(),
                provider(),
            )
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError::ClientVerifier(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(load_certs(cert)?, load_key(key)?)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The identity a verified client certificate names, as Kubernetes reads it: the subject's
/// Common Name is the user and its Organizations are the groups. `None` when the certificate
/// does not parse or names nobody.
pub fn certificate_identity(leaf: &CertificateDer<'_>) -> Option<(String, Vec<String>)> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(leaf.as_ref()).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .filter(|n| !n.is_empty())?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    Some((name, groups))
}

/// Paths of a certificate and key pair `<dir>/<name>.crt` and `<dir>/<name>.key`.
pub fn pair_paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    )
}

/// Returns `<dir>/<name>.crt` and `.key`, generating them when missing: a self-signed CA and a
/// serving certificate it signs for `hosts` (DNS names or IP addresses). The `.crt` file holds
/// the serving certificate followed by the CA, so it also serves as the clients' CA bundle.
pub fn ensure_self_signed(
    dir: &Path,
    name: &str,
    hosts: &[String],
) -> Result<(PathBuf, PathBuf), TlsError> {
    let (cert_path, key_path) = pair_paths(dir, name);
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;

    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    let mut ca_dn = DistinguishedName::new();
    ca_dn.push(
        DnType::CommonName,
        format!(
            "{}-ca@{}",
            hosts.first().map_or("localhost", |h| h),
            unix_now()
        ),
    );
    ca_params.distinguished_name = ca_dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!(
            "{}@{}",
            hosts.first().map_or("localhost", |h| h),
            unix_now()
        ),
    );
    params.distinguished_name = dn;
    params.subject_alt_names = hosts
        .iter()
        .filter_map(|h| match h.parse::<IpAddr>() {
            Ok(ip) => Some(SanType::IpAddress(ip)),
            Err(_) => h.clone().try_into().ok().map(SanType::DnsName),
        })
        .collect();
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &issuer)?;

    let write = |path: &Path, data: String| {
        std::fs::write(path, data).map_err(|source| TlsError::Write {
            path: path.to_path_buf(),
            source,
        })
    };
    write(&cert_path, format!("{}{}", cert.pem(), ca_cert.pem()))?;
    write(&key_path, key.serialize_pem())?;
    Ok((cert_path, key_path))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_then_reuses_a_pair() {
        let dir = std::env::temp_dir().join(format!("cb-tls-{}", std::process::id()));
        let hosts = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let (c1, k1) = ensure_self_signed(&dir, "apiserver", &hosts).unwrap();
        let first = std::fs::read(&c1).unwrap();
        assert_eq!(load_certs(&c1).unwrap().len(), 2);
        assert!(server_config(&c1, &k1).is_ok());
        assert!(server_config_with_client_ca(&c1, &k1, Some(&c1)).is_ok());
        assert!(matches!(
            server_config_with_client_ca(&c1, &k1, Some(&k1)),
            Err(TlsError::NoCertificate { .. })
        ));
        let (c2, _) = ensure_self_signed(&dir, "apiserver", &hosts).unwrap();
        assert_eq!(first, std::fs::read(&c2).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn identity_is_common_name_and_organizations() {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "kube-apiserver-kubelet-client");
        dn.push(DnType::OrganizationName, "system:masters");
        params.distinguished_name = dn;
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            certificate_identity(cert.der()),
            Some((
                "kube-apiserver-kubelet-client".to_string(),
                vec!["system:masters".to_string()]
            ))
        );
    }
}
