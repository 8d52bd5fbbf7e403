//! Compact JWS (JWT) signing and verification with the key kinds upstream accepts for
//! service-account tokens: RSA (RS256) and ECDSA P-256 (ES256), read from PEM files holding
//! private keys, public keys or certificates.

use std::path::Path;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use ring::{
    rand::SystemRandom,
    signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey},
};
use serde_json::{json, Value};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

use super::AuthError;

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";

/// A key that signs tokens.
pub enum SigningKey {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A key that verifies tokens: the algorithm and the public key bytes ring expects
/// (PKCS#1 RSAPublicKey, or an uncompressed P-256 point).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    pub alg: &'static str,
    pub public: Vec<u8>,
}

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("not a JWT")]
    Malformed,
    #[error("invalid signature")]
    Signature,
}

fn invalid(path: &Path, why: impl Into<String>) -> AuthError {
    AuthError::Invalid {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

fn pem_items(path: &Path) -> Result<Vec<rustls_pemfile::Item>, AuthError> {
    let data = std::fs::read(path).map_err(|source| AuthError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let items: Vec<_> = rustls_pemfile::read_all(&mut data.as_slice())
        .filter_map(Result::ok)
        .collect();
    Ok(items)
}

impl SigningKey {
    /// Reads the first private key of a PEM file.
    pub fn load(path: &Path) -> Result<SigningKey, AuthError> {
        for item in pem_items(path)? {
            match item {
                rustls_pemfile::Item::Pkcs8Key(k) => {
                    let der = k.secret_pkcs8_der();
                    if let Ok(rsa) = RsaKeyPair::from_pkcs8(der) {
                        return Ok(SigningKey::Rsa(rsa));
                    }
                    return EcdsaKeyPair::from_pkcs8(
                        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                        der,
                        &SystemRandom::new(),
                    )
                    .map(SigningKey::Ec)
                    .map_err(|e| invalid(path, format!("unsupported PKCS#8 key: {e}")));
                }
                rustls_pemfile::Item::Pkcs1Key(k) => {
                    return RsaKeyPair::from_der(k.secret_pkcs1_der())
                        .map(SigningKey::Rsa)
                        .map_err(|e| invalid(path, format!("bad RSA key: {e}")));
                }
                _ => {}
            }
        }
        Err(invalid(
            path,
            "no PKCS#8 or PKCS#1 private key (convert SEC1 EC keys with `openssl pkcs8 -topk8 -nocrypt`)",
        ))
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        match self {
            SigningKey::Rsa(k) => VerifyingKey {
                alg: "RS256",
                public: k.public().as_ref().to_vec(),
            },
            SigningKey::Ec(k) => VerifyingKey {
                alg: "ES256",
                public: k.public_key().as_ref().to_vec(),
            },
        }
    }

    fn alg(&self) -> &'static str {
        match self {
            SigningKey::Rsa(_) => "RS256",
            SigningKey::Ec(_) => "ES256",
        }
    }

    /// Signs `claims` into a compact JWT whose `kid` identifies the public key.
    pub fn sign(&self, claims: &Value) -> Result<String, AuthError> {
        let header = json!({ "alg": self.alg(), "kid": self.verifying_key().key_id() });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = SystemRandom::new();
        let sig = match self {
            SigningKey::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    input.as_bytes(),
                    &mut sig,
                )
                .map_err(|_| AuthError::Sign)?;
                sig
            }
            SigningKey::Ec(k) => k
                .sign(&rng, input.as_bytes())
                .map_err(|_| AuthError::Sign)?
                .as_ref()
                .to_vec(),
        };
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

impl VerifyingKey {
    /// Every verifying key of a PEM file: public keys, certificates' keys and private keys'
    /// public halves.
    pub fn load_all(path: &Path) -> Result<Vec<VerifyingKey>, AuthError> {
        let mut keys = Vec::new();
        for item in pem_items(path)? {
            match item {
                rustls_pemfile::Item::SubjectPublicKeyInfo(spki) => {
                    keys.push(from_spki(spki.as_ref()).map_err(|why| invalid(path, why))?)
                }
                rustls_pemfile::Item::X509Certificate(cert) => {
                    let (_, c) = X509Certificate::from_der(cert.as_ref())
                        .map_err(|e| invalid(path, e.to_string()))?;
                    keys.push(from_spki(c.public_key().raw).map_err(|why| invalid(path, why))?)
                }
                _ => {}
            }
        }
        if keys.is_empty() {
            if let Ok(k) = SigningKey::load(path) {
                keys.push(k.verifying_key());
            }
        }
        if keys.is_empty() {
            return Err(invalid(path, "no public key, certificate or private key"));
        }
        Ok(keys)
    }

    /// The key's DER SubjectPublicKeyInfo.
    pub fn spki(&self) -> Vec<u8> {
        // rsaEncryption with NULL parameters; id-ecPublicKey on prime256v1.
        const RSA_ALGORITHM: &[u8] = &[
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
        ];
        const EC_ALGORITHM: &[u8] = &[
            0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
            0xce, 0x3d, 0x03, 0x01, 0x07,
        ];
        let algorithm = if self.alg == "RS256" {
            RSA_ALGORITHM
        } else {
            EC_ALGORITHM
        };
        let mut bits = vec![0];
        bits.extend_from_slice(&self.public);
        let mut body = der(0x30, algorithm);
        body.extend(der(0x03, &bits));
        der(0x30, &body)
    }

    /// The key id upstream gives a key: the unpadded base64url SHA-256 of its DER
    /// SubjectPublicKeyInfo.
    pub fn key_id(&self) -> String {
        URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &self.spki()))
    }

    /// The key as a JWK, for the issuer's JWKS document.
    pub fn jwk(&self) -> Option<Value> {
        let mut jwk = json!({ "use": "sig", "alg": self.alg, "kid": self.key_id() });
        if self.alg == "RS256" {
            let spki = self.spki();
            let (_, parsed) = SubjectPublicKeyInfo::from_der(&spki).ok()?;
            let x509_parser::public_key::PublicKey::RSA(rsa) = parsed.parsed().ok()? else {
                return None;
            };
            let trim = |b: &[u8]| {
                let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
                URL_SAFE_NO_PAD.encode(&b[start..])
            };
            jwk["kty"] = json!("RSA");
            jwk["n"] = json!(trim(rsa.modulus));
            jwk["e"] = json!(trim(rsa.exponent));
        } else {
            let point = self.public.get(1..65)?;
            jwk["kty"] = json!("EC");
            jwk["crv"] = json!("P-256");
            jwk["x"] = json!(URL_SAFE_NO_PAD.encode(&point[..32]));
            jwk["y"] = json!(URL_SAFE_NO_PAD.encode(&point[32..]));
        }
        Some(jwk)
    }

    fn verify(&self, input: &[u8], sig: &[u8]) -> bool {
        let alg: &dyn signature::VerificationAlgorithm = match self.alg {
            "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
            _ => &signature::ECDSA_P256_SHA256_FIXED,
        };
        UnparsedPublicKey::new(alg, &self.public)
            .verify(input, sig)
            .is_ok()
    }
}

/// One DER element (lengths below 64 KiB, which public keys are).
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

fn from_spki(der: &[u8]) -> Result<VerifyingKey, String> {
    let (_, spki) = SubjectPublicKeyInfo::from_der(der).map_err(|e| e.to_string())?;
    let alg = match spki.algorithm.algorithm.to_id_string().as_str() {
        OID_RSA => "RS256",
        OID_EC => "ES256",
        other => return Err(format!("unsupported public key algorithm {other}")),
    };
    Ok(VerifyingKey {
        alg,
        public: spki.subject_public_key.data.to_vec(),
    })
}

/// The claims of a token without checking its signature (to pick the verifier).
pub fn peek_claims(token: &str) -> Result<Value, JwtError> {
    let mut parts = token.split('.');
    let (_, Some(claims), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let raw = URL_SAFE_NO_PAD
        .decode(claims)
        .map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&raw).map_err(|_| JwtError::Malformed)
}

/// Verifies a token's signature with any of `keys` and returns its claims.
pub fn verify(token: &str, keys: &[VerifyingKey]) -> Result<Value, JwtError> {
    let (input, sig) = token.rsplit_once('.').ok_or(JwtError::Malformed)?;
    let (header, _) = input.split_once('.').ok_or(JwtError::Malformed)?;
    let header: Value = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or(JwtError::Malformed)?;
    let alg = header["alg"].as_str().ok_or(JwtError::Malformed)?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| JwtError::Malformed)?;
    if !keys
        .iter()
        .filter(|k| k.alg == alg)
        .any(|k| k.verify(input.as_bytes(), &sig))
    {
        return Err(JwtError::Signature);
    }
    peek_claims(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ec_key(dir: &Path) -> (SigningKey, std::path::PathBuf) {
        let kp = rcgen::KeyPair::generate().unwrap();
        let priv_path = dir.join("sa.key");
        std::fs::write(&priv_path, kp.serialize_pem()).unwrap();
        let pub_path = dir.join("sa.pub");
        std::fs::write(&pub_path, kp.public_key_pem()).unwrap();
        (SigningKey::load(&priv_path).unwrap(), pub_path)
    }

    #[test]
    fn signs_and_verifies_es256() {
        let dir = tempfile::tempdir().unwrap();
        let (key, pub_path) = ec_key(dir.path());
        let keys = VerifyingKey::load_all(&pub_path).unwrap();
        assert_eq!(keys, vec![key.verifying_key()]);
        let pem = std::fs::read_to_string(&pub_path).unwrap();
        let spki = rustls_pemfile::public_keys(&mut pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(keys[0].spki(), spki.as_ref());
        let jwk = keys[0].jwk().unwrap();
        assert_eq!(
            (jwk["kty"].as_str(), jwk["x"].as_str().map(str::len)),
            (Some("EC"), Some(43))
        );
        let token = key.sign(&json!({"sub": "x"})).unwrap();
        assert_eq!(verify(&token, &keys).unwrap()["sub"], "x");
        let other = tempfile::tempdir().unwrap();
        let (forger, _) = ec_key(other.path());
        let forged = forger.sign(&json!({"sub": "x"})).unwrap();
        assert_eq!(verify(&forged, &keys), Err(JwtError::Signature));
        let (head, _) = token.rsplit_once('.').unwrap();
        let (_, sig) = forged.rsplit_once('.').unwrap();
        assert_eq!(
            verify(&format!("{head}.{sig}"), &keys),
            Err(JwtError::Signature)
        );
        assert_eq!(verify("a.b", &keys), Err(JwtError::Malformed));
    }
}
