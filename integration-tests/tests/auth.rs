//! Authentication, authorization, audit and limits against a real apiserver and etcd, with
//! the real kubectl: client certificates, static tokens, service-account tokens (TokenRequest,
//! legacy, forged, expired, for a deleted account), anonymous access, RBAC with `view` in a
//! namespace, `kubectl auth can-i` / `whoami`, impersonation, escalation prevention, the Node
//! authorizer, the audit log and the max-in-flight limits.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::Arc,
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use integration_tests::{output_text, ApiServer, Etcd};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Certificates, keys and configuration files of a secured test cluster.
struct Pki {
    dir: tempfile::TempDir,
    ca: Issuer<'static, KeyPair>,
    sa_key: KeyPair,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "ferrokube-test-ca");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.path().join("ca.crt"), cert.pem()).unwrap();
        let sa_key = KeyPair::generate().unwrap();
        std::fs::write(dir.path().join("sa.key"), sa_key.serialize_pem()).unwrap();
        std::fs::write(dir.path().join("sa.pub"), sa_key.public_key_pem()).unwrap();
        std::fs::write(
            dir.path().join("tokens.csv"),
            "admin-token,admin,1,system:masters\nalice-token,alice,2,\"dev,qa\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("audit-policy.yaml"),
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n  resources: [{group: \"\", resources: [configmaps]}]\n- level: Metadata\n",
        )
        .unwrap();
        Pki {
            dir,
            ca: Issuer::new(params, key),
            sa_key,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A client certificate for `user` in `groups`, signed by `issuer` (the cluster CA unless
    /// given), written as `<file>.crt` and `<file>.key`.
    fn client_cert(
        &self,
        file: &str,
        user: &str,
        group: Option<&str>,
        issuer: Option<&Issuer<'static, KeyPair>>,
        expired: bool,
    ) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, user);
        if let Some(g) = group {
            dn.push(DnType::OrganizationName, g);
        }
        params.distinguished_name = dn;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params.signed_by(&key, issuer.unwrap_or(&self.ca)).unwrap();
        let (c, k) = (
            self.path(&format!("{file}.crt")),
            self.path(&format!("{file}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    /// The flags of a Node,RBAC apiserver with every authenticator and the audit log on.
    fn flags(&self) -> Vec<String> {
        vec![
            format!("--client-ca-file={}", self.path("ca.crt").display()),
            format!("--token-auth-file={}", self.path("tokens.csv").display()),
            "--authorization-mode=Node,RBAC".into(),
            format!(
                "--service-account-signing-key-file={}",
                self.path("sa.key").display()
            ),
            format!(
                "--service-account-key-file={}",
                self.path("sa.pub").display()
            ),
            format!("--service-account-issuer={ISSUER}"),
            format!("--audit-log-path={}", self.path("audit.log").display()),
            format!(
                "--audit-policy-file={}",
                self.path("audit-policy.yaml").display()
            ),
        ]
    }
}

/// Signs `claims` as an ES256 JWT with `key`.
fn sign_jwt(key: &KeyPair, claims: &Value) -> String {
    let pair = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &key.serialize_der(),
        &ring::rand::SystemRandom::new(),
    )
    .unwrap();
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(json!({"alg": "ES256", "kid": "test"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = pair
        .sign(&ring::rand::SystemRandom::new(), input.as_bytes())
        .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

/// Writes a kubeconfig for the apiserver with the given `user:` body.
fn kubeconfig(api: &ApiServer, pki: &Pki, name: &str, user: &str) -> PathBuf {
    let path = pki.path(&format!("{name}.kubeconfig"));
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: u\n  user:\n{user}\ncontexts:\n- name: test\n  context: {{cluster: test, user: u}}\ncurrent-context: test\n",
        api.url(),
        api.ca_file().display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn cert_user(c: &Path, k: &Path) -> String {
    format!(
        "    client-certificate: {}\n    client-key: {}",
        c.display(),
        k.display()
    )
}

fn kubectl(api: &ApiServer, kc: &Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .env("KUBECONFIG", kc)
        .env("HOME", api.dir.path())
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", output_text(&o));
    stdout(&o)
}

/// Retries `check` for a few seconds: RBAC objects and service accounts reach the
/// authorizers through the watch caches.
fn eventually(what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let start = Instant::now();
    loop {
        match check() {
            Ok(()) => return,
            Err(e) if start.elapsed() > Duration::from_secs(10) => panic!("{what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn expect(o: Output, success: bool, needle: &str) -> Result<(), String> {
    let text = output_text(&o);
    if o.status.success() == success && text.contains(needle) {
        Ok(())
    } else {
        Err(text)
    }
}

fn apply(api: &ApiServer, kc: &Path, manifest: &Value) -> Output {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .env("KUBECONFIG", kc)
        .env("HOME", api.dir.path())
        .args(["create", "--validate=false", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(mut input) = child.stdin.take() {
        input.write_all(manifest.to_string().as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// A raw HTTPS request over a fresh connection: (status code, body).
async fn raw(port: u16, ca: &Path, request: &str) -> std::io::Result<(u16, String)> {
    let mut conn = tls_connect(port, ca).await?;
    conn.write_all(request.as_bytes()).await?;
    let mut out = Vec::new();
    conn.read_to_end(&mut out).await?;
    let text = String::from_utf8_lossy(&out).to_string();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    Ok((code, body))
}

async fn tls_connect(
    port: u16,
    ca: &Path,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca)?;
    for c in rustls_pem_certs(&pem) {
        roots.add(c).map_err(std::io::Error::other)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(std::io::Error::other)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let name =
        rustls::pki_types::ServerName::try_from("127.0.0.1").map_err(std::io::Error::other)?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// The certificates of a PEM bundle.
fn rustls_pem_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect()
}

fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}\r\n")
}

/// A Node,RBAC apiserver with every authenticator and the audit log on, the admin's
/// kubeconfig (a client certificate in system:masters) and a `demo` namespace.
struct Cluster {
    _etcd: Etcd,
    pki: Pki,
    api: ApiServer,
    admin: PathBuf,
}

/// Clusters start one at a time: etcd and the apiserver starting all at once on a small
/// machine can miss the harness's readiness deadlines.
static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Cluster {
    fn start() -> Cluster {
        let _one_at_a_time = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        let etcd = Etcd::start().unwrap();
        let pki = Pki::new();
        let flags = pki.flags();
        let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
        let api = ApiServer::start_with(&etcd, &flag_refs).unwrap();
        let (c, k) = pki.client_cert(
            "admin",
            "kubernetes-admin",
            Some("system:masters"),
            None,
            false,
        );
        let admin = kubeconfig(&api, &pki, "admin", &cert_user(&c, &k));
        ok(kubectl(&api, &admin, &["create", "namespace", "demo"]));
        Cluster {
            _etcd: etcd,
            pki,
            api,
            admin,
        }
    }

    /// The kubeconfig of alice (a static token), bound to `view` in demo.
    fn alice_with_view(&self) -> PathBuf {
        let alice = kubeconfig(&self.api, &self.pki, "alice", "    token: alice-token");
        ok(kubectl(
            &self.api,
            &self.admin,
            &[
                "create",
                "rolebinding",
                "alice-view",
                "--clusterrole=view",
                "--user=alice",
                "-n",
                "demo",
            ],
        ));
        eventually("alice lists pods in demo", || {
            expect(
                kubectl(&self.api, &alice, &["get", "pods", "-n", "demo"]),
                true,
                "",
            )
        });
        alice
    }
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

/// A SelfSubjectReview request authenticated by `token`.
fn whoami_request(token: &str) -> String {
    format!(
        "POST /apis/authentication.k8s.io/v1/selfsubjectreviews HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 2\r\n{}\r\n{{}}",
        bearer(token)
    )
}

/// Anonymous requests reach only the public-info paths; client certificates from the
/// cluster CA authenticate, others are refused; the bootstrap policy exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_and_client_certificates() {
    let c = Cluster::start();
    let (api, pki, admin) = (&c.api, &c.pki, &c.admin);
    let ca = api.ca_file();

    // Anonymous: public-info paths only, everything else is a 401 Status.
    let (code, _) = raw(api.port, &ca, &get("/healthz", "")).await.unwrap();
    assert_eq!(code, 200);
    let (code, _) = raw(api.port, &ca, &get("/version", "")).await.unwrap();
    assert_eq!(code, 200);
    let (code, body) = raw(api.port, &ca, &get("/api/v1/namespaces", ""))
        .await
        .unwrap();
    assert_eq!(code, 401, "{body}");
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status["kind"].as_str(), status["reason"].as_str()),
        (Some("Status"), Some("Unauthorized"))
    );
    let (code, _) = raw(api.port, &ca, &get("/api", "")).await.unwrap();
    assert_eq!(code, 401);
    let (code, _) = raw(
        api.port,
        &ca,
        &get("/api/v1/pods", "Authorization: Bearer not-a-token\r\n"),
    )
    .await
    .unwrap();
    assert_eq!(code, 401);
    let bogus = kubeconfig(api, pki, "bogus", "    token: bogus");
    expect(
        kubectl(api, &bogus, &["get", "pods"]),
        false,
        "You must be logged in to the server",
    )
    .unwrap();

    // The admin: a client certificate in system:masters, and the static admin token.
    assert_eq!(
        ok(kubectl(
            api,
            admin,
            &[
                "auth",
                "whoami",
                "-o",
                "jsonpath={.status.userInfo.username}"
            ]
        )),
        "kubernetes-admin"
    );
    ok(kubectl(api, &api.kubeconfig, &["get", "namespaces"]));
    // The bootstrap policy is there.
    for role in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:node",
        "system:kube-scheduler",
        "system:kube-controller-manager",
        "system:node-proxier",
        "system:public-info-viewer",
        "system:basic-user",
        "system:discovery",
        "system:controller:deployment-controller",
    ] {
        ok(kubectl(api, admin, &["get", "clusterrole", role]));
    }

    // The review APIs are discoverable.
    let resources = ok(kubectl(api, admin, &["api-resources", "-o", "name"]));
    for r in [
        "tokenreviews.authentication.k8s.io",
        "selfsubjectreviews.authentication.k8s.io",
        "selfsubjectaccessreviews.authorization.k8s.io",
        "subjectaccessreviews.authorization.k8s.io",
    ] {
        assert!(resources.lines().any(|l| l == r), "{r} not in {resources}");
    }

    // Bad client certificates are refused.
    let other_ca = {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        Issuer::new(params, key)
    };
    let (crt, key) = pki.client_cert(
        "wrong-ca",
        "kubernetes-admin",
        Some("system:masters"),
        Some(&other_ca),
        false,
    );
    let wrong = kubeconfig(api, pki, "wrong-ca", &cert_user(&crt, &key));
    let o = kubectl(api, &wrong, &["get", "namespaces"]);
    assert!(!o.status.success(), "{}", output_text(&o));
    let (crt, key) = pki.client_cert(
        "expired",
        "kubernetes-admin",
        Some("system:masters"),
        None,
        true,
    );
    let expired = kubeconfig(api, pki, "expired", &cert_user(&crt, &key));
    let o = kubectl(api, &expired, &["get", "namespaces"]);
    assert!(!o.status.success(), "{}", output_text(&o));
}

/// A user bound to view in a namespace, as kubectl auth can-i and whoami see it, and
/// impersonation.
#[test]
fn view_in_a_namespace_can_i_and_impersonation() {
    let c = Cluster::start();
    let (api, pki, admin) = (&c.api, &c.pki, &c.admin);

    // alice is bound to view in demo: she may list pods there, not create them.
    let alice = kubeconfig(api, pki, "alice", "    token: alice-token");
    expect(
        kubectl(api, &alice, &["get", "pods", "-n", "demo"]),
        false,
        "forbidden",
    )
    .unwrap();
    ok(kubectl(
        api,
        admin,
        &[
            "create",
            "rolebinding",
            "alice-view",
            "--clusterrole=view",
            "--user=alice",
            "-n",
            "demo",
        ],
    ));
    eventually("alice lists pods in demo", || {
        expect(
            kubectl(api, &alice, &["get", "pods", "-n", "demo"]),
            true,
            "",
        )
    });
    expect(
        kubectl(api, &alice, &["create", "configmap", "x", "-n", "demo"]),
        false,
        "cannot create resource \"configmaps\" in API group \"\" in the namespace \"demo\"",
    )
    .unwrap();
    expect(
        kubectl(api, &alice, &["get", "pods", "-n", "default"]),
        false,
        "forbidden",
    )
    .unwrap();
    assert_eq!(
        stdout(&kubectl(
            api,
            &alice,
            &["auth", "can-i", "list", "pods", "-n", "demo"]
        )),
        "yes"
    );
    let no = kubectl(
        api,
        &alice,
        &["auth", "can-i", "create", "pods", "-n", "demo"],
    );
    assert_eq!((stdout(&no).as_str(), no.status.code()), ("no", Some(1)));
    let who = ok(kubectl(api, &alice, &["auth", "whoami", "-o", "json"]));
    let who: Value = serde_json::from_str(&who).unwrap();
    assert_eq!(who["status"]["userInfo"]["username"], "alice");
    assert_eq!(
        who["status"]["userInfo"]["groups"],
        json!(["dev", "qa", "system:authenticated"])
    );
    let rules = ok(kubectl(
        api,
        &alice,
        &["auth", "can-i", "--list", "-n", "demo"],
    ));
    assert!(rules.contains("pods"), "{rules}");

    // Impersonation: the admin may act as alice; alice may not act as anyone.
    assert_eq!(
        stdout(&kubectl(
            api,
            admin,
            &[
                "--as=alice",
                "auth",
                "can-i",
                "create",
                "pods",
                "-n",
                "demo"
            ]
        )),
        "no"
    );
    ok(kubectl(
        api,
        admin,
        &["--as=alice", "get", "pods", "-n", "demo"],
    ));
    expect(
        kubectl(api, admin, &["--as=alice", "get", "pods", "-n", "default"]),
        false,
        "User \"alice\" cannot list",
    )
    .unwrap();
    assert_eq!(
        ok(kubectl(
            api,
            admin,
            &[
                "--as=bob",
                "--as-group=g1",
                "auth",
                "whoami",
                "-o",
                "jsonpath={.status.userInfo.groups}"
            ]
        )),
        "[\"g1\",\"system:authenticated\"]"
    );
    expect(
        kubectl(api, &alice, &["--as=admin", "get", "pods", "-n", "demo"]),
        false,
        "cannot impersonate resource \"users\"",
    )
    .unwrap();
}

/// Nobody grants through roles or bindings more than they hold.
#[test]
fn rbac_escalation_is_prevented() {
    let c = Cluster::start();
    let (api, admin) = (&c.api, &c.admin);
    let alice = c.alice_with_view();

    // Escalation: alice may manage roles in demo, but not grant what she lacks.
    ok(apply(
        api,
        admin,
        &json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "role-admin", "namespace": "demo"},
            "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["create", "get", "list", "patch"]}],
        }),
    ));
    ok(kubectl(
        api,
        admin,
        &[
            "create",
            "rolebinding",
            "alice-roles",
            "--role=role-admin",
            "--user=alice",
            "-n",
            "demo",
        ],
    ));
    let role = |name: &str, resource: &str, verb: &str| {
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": "demo"},
            "rules": [{"apiGroups": [""], "resources": [resource], "verbs": [verb]}],
        })
    };
    eventually("alice creates a role she holds", || {
        expect(
            apply(api, &alice, &role("pod-reader", "pods", "list")),
            true,
            "created",
        )
    });
    expect(
        apply(api, &alice, &role("secret-reader", "secrets", "get")),
        false,
        "attempting to grant RBAC permissions not currently held",
    )
    .unwrap();
    expect(
        kubectl(
            api,
            &alice,
            &[
                "create",
                "rolebinding",
                "bob-admin",
                "--clusterrole=admin",
                "--user=bob",
                "-n",
                "demo",
            ],
        ),
        false,
        "attempting to grant RBAC permissions not currently held",
    )
    .unwrap();
    ok(kubectl(
        api,
        &alice,
        &[
            "patch",
            "role",
            "pod-reader",
            "-n",
            "demo",
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/rules/0/verbs/-","value":"get"}]"#,
        ],
    ));
    expect(
        kubectl(
            api,
            &alice,
            &[
                "patch",
                "role",
                "pod-reader",
                "-n",
                "demo",
                "--type=json",
                "-p",
                r#"[{"op":"add","path":"/rules/0/resources/-","value":"secrets"}]"#,
            ],
        ),
        false,
        "attempting to grant RBAC permissions not currently held",
    )
    .unwrap();
    ok(kubectl(
        api,
        &alice,
        &[
            "create",
            "rolebinding",
            "bob-view",
            "--clusterrole=view",
            "--user=bob",
            "-n",
            "demo",
        ],
    ));
}

/// TokenRequest tokens, issuer discovery, legacy tokens; expired, forged and orphaned
/// tokens are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_tokens() {
    let c = Cluster::start();
    let (api, pki, admin) = (&c.api, &c.pki, &c.admin);
    let ca = api.ca_file();

    // Service-account tokens from the TokenRequest API.
    ok(kubectl(
        api,
        admin,
        &["create", "serviceaccount", "default", "-n", "demo"],
    ));
    let token = ok(kubectl(
        api,
        admin,
        &["create", "token", "default", "-n", "demo"],
    ));
    let sa = kubeconfig(api, pki, "sa", &format!("    token: {token}"));
    eventually("the token authenticates", || {
        let o = kubectl(
            api,
            &sa,
            &[
                "auth",
                "whoami",
                "-o",
                "jsonpath={.status.userInfo.username}",
            ],
        );
        if stdout(&o) == "system:serviceaccount:demo:default" {
            Ok(())
        } else {
            Err(output_text(&o))
        }
    });
    // The issuer's discovery documents name the key that signed it.
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    let jwks: Value =
        serde_json::from_str(&ok(kubectl(api, &sa, &["get", "--raw", "/openid/v1/jwks"]))).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], header["kid"]);
    let discovery: Value = serde_json::from_str(&ok(kubectl(
        api,
        &sa,
        &["get", "--raw", "/.well-known/openid-configuration"],
    )))
    .unwrap();
    assert_eq!(discovery["issuer"], ISSUER);
    expect(
        kubectl(api, &sa, &["get", "pods", "-n", "demo"]),
        false,
        "User \"system:serviceaccount:demo:default\" cannot list",
    )
    .unwrap();
    // TokenReview, for the API's audiences and for others.
    let review = |audiences: &[&str]| {
        let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": token, "audiences": audiences}})
        .to_string();
        format!(
            "POST /apis/authentication.k8s.io/v1/tokenreviews HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n{body}",
            body.len(),
            bearer("admin-token")
        )
    };
    let (code, body) = raw(api.port, &ca, &review(&[])).await.unwrap();
    assert_eq!(code, 201, "{body}");
    let reviewed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reviewed["status"]["authenticated"], true);
    assert_eq!(
        reviewed["status"]["user"]["username"],
        "system:serviceaccount:demo:default"
    );
    assert_eq!(reviewed["status"]["audiences"], json!([ISSUER]));
    let (_, body) = raw(api.port, &ca, &review(&["vault"])).await.unwrap();
    let reviewed: Value = serde_json::from_str(&body).unwrap();
    assert!(reviewed["status"]["authenticated"].is_null(), "{body}");
    assert!(reviewed["status"]["error"]
        .as_str()
        .unwrap()
        .contains("audiences"));

    // Expired, forged, and deleted-account tokens are refused.
    let sa_uid = ok(kubectl(
        api,
        admin,
        &[
            "get",
            "sa",
            "default",
            "-n",
            "demo",
            "-o",
            "jsonpath={.metadata.uid}",
        ],
    ));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = |exp: i64| {
        json!({
            "iss": ISSUER, "sub": "system:serviceaccount:demo:default", "aud": [ISSUER],
            "iat": now - 7200, "nbf": now - 7200, "exp": exp,
            "kubernetes.io": {"namespace": "demo", "serviceaccount": {"name": "default", "uid": sa_uid}},
        })
    };
    let valid = sign_jwt(&pki.sa_key, &claims(now + 600));
    let (code, body) = raw(api.port, &ca, &whoami_request(&valid)).await.unwrap();
    assert_eq!(code, 201, "{body}");
    let expired = sign_jwt(&pki.sa_key, &claims(now - 120));
    assert_eq!(
        raw(api.port, &ca, &whoami_request(&expired))
            .await
            .unwrap()
            .0,
        401
    );
    let forged = sign_jwt(&KeyPair::generate().unwrap(), &claims(now + 600));
    assert_eq!(
        raw(api.port, &ca, &whoami_request(&forged))
            .await
            .unwrap()
            .0,
        401
    );
    let mut tampered = valid.clone();
    let (head, sig) = tampered
        .rsplit_once('.')
        .map(|(h, s)| (h.to_string(), s.to_string()))
        .unwrap();
    let other_claims = URL_SAFE_NO_PAD.encode(claims(now + 999_999).to_string());
    let header = head.split('.').next().unwrap();
    tampered = format!("{header}.{other_claims}.{sig}");
    assert_eq!(
        raw(api.port, &ca, &whoami_request(&tampered))
            .await
            .unwrap()
            .0,
        401
    );
    ok(kubectl(
        api,
        admin,
        &["create", "serviceaccount", "doomed", "-n", "demo"],
    ));
    let doomed = ok(kubectl(
        api,
        admin,
        &["create", "token", "doomed", "-n", "demo"],
    ));
    assert_eq!(
        raw(api.port, &ca, &whoami_request(&doomed))
            .await
            .unwrap()
            .0,
        201
    );
    ok(kubectl(
        api,
        admin,
        &["delete", "serviceaccount", "doomed", "-n", "demo"],
    ));
    let start = Instant::now();
    loop {
        let code = raw(api.port, &ca, &whoami_request(&doomed))
            .await
            .unwrap()
            .0;
        if code == 401 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "token of a deleted account still accepted ({code})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A legacy token kept in a secret.
    let legacy = sign_jwt(
        &pki.sa_key,
        &json!({
            "iss": "kubernetes/serviceaccount",
            "sub": "system:serviceaccount:demo:default",
            "kubernetes.io/serviceaccount/namespace": "demo",
            "kubernetes.io/serviceaccount/secret.name": "default-token",
            "kubernetes.io/serviceaccount/service-account.name": "default",
            "kubernetes.io/serviceaccount/service-account.uid": sa_uid,
        }),
    );
    assert_eq!(
        raw(api.port, &ca, &whoami_request(&legacy))
            .await
            .unwrap()
            .0,
        401
    );
    ok(apply(
        api,
        admin,
        &json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": "default-token", "namespace": "demo", "annotations": {"kubernetes.io/service-account.name": "default"}},
            "data": {"token": base64::engine::general_purpose::STANDARD.encode(&legacy)},
        }),
    ));
    let start = Instant::now();
    while raw(api.port, &ca, &whoami_request(&legacy))
        .await
        .unwrap()
        .0
        != 201
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "legacy token not accepted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A token bound to a secret lives as long as the secret, as legacy tokens do.
    let bound = ok(kubectl(
        api,
        admin,
        &[
            "create",
            "token",
            "default",
            "-n",
            "demo",
            "--bound-object-kind=Secret",
            "--bound-object-name=default-token",
        ],
    ));
    assert_eq!(
        raw(api.port, &ca, &whoami_request(&bound)).await.unwrap().0,
        201
    );
    ok(kubectl(
        api,
        admin,
        &["delete", "secret", "default-token", "-n", "demo"],
    ));
    let start = Instant::now();
    while raw(api.port, &ca, &whoami_request(&bound)).await.unwrap().0 != 401
        || raw(api.port, &ca, &whoami_request(&legacy))
            .await
            .unwrap()
            .0
            != 401
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "tokens of a deleted secret still accepted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A kubelet reads only what its pods use and writes only its own objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_authorizer_and_node_restriction() {
    let c = Cluster::start();
    let (api, pki, admin) = (&c.api, &c.pki, &c.admin);
    let ca = api.ca_file();
    ok(kubectl(
        api,
        admin,
        &["create", "serviceaccount", "default", "-n", "demo"],
    ));

    // Nodes read only what their own pods use.
    for (pod, node, secret) in [("p1", "n1", "s1"), ("p2", "n2", "s2")] {
        ok(kubectl(
            api,
            admin,
            &[
                "create",
                "secret",
                "generic",
                secret,
                "-n",
                "demo",
                "--from-literal=k=v",
            ],
        ));
        ok(apply(
            api,
            admin,
            &json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": pod, "namespace": "demo"},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox", "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": secret, "key": "k"}}}]}]},
            }),
        ));
    }
    let (crt, key) = pki.client_cert("n1", "system:node:n1", Some("system:nodes"), None, false);
    let node = kubeconfig(api, pki, "n1", &cert_user(&crt, &key));
    eventually("n1 reads the secret of its pod", || {
        expect(
            kubectl(api, &node, &["get", "secret", "s1", "-n", "demo"]),
            true,
            "s1",
        )
    });
    expect(
        kubectl(api, &node, &["get", "secret", "s2", "-n", "demo"]),
        false,
        "no relationship found between node 'n1' and this object",
    )
    .unwrap();
    expect(
        kubectl(api, &node, &["get", "secrets", "-n", "demo"]),
        false,
        "forbidden",
    )
    .unwrap();
    ok(kubectl(
        api,
        &node,
        &[
            "get",
            "secrets",
            "-n",
            "demo",
            "--field-selector=metadata.name=s1",
        ],
    ));
    expect(
        kubectl(
            api,
            &node,
            &[
                "get",
                "secrets",
                "-n",
                "demo",
                "--field-selector=metadata.name=s2",
            ],
        ),
        false,
        "forbidden",
    )
    .unwrap();
    ok(kubectl(api, &node, &["get", "pods", "-A"]));
    expect(
        kubectl(api, &node, &["label", "pod", "p2", "-n", "demo", "x=y"]),
        false,
        "forbidden",
    )
    .unwrap();
    expect(
        kubectl(
            api,
            &node,
            &["create", "token", "default", "-n", "kube-system"],
        ),
        false,
        "forbidden",
    )
    .unwrap();

    // NodeRestriction: its own Node and mirror pods only, tokens only for its pods.
    ok(apply(
        api,
        &node,
        &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}),
    ));
    expect(
        apply(
            api,
            &node,
            &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n3"}}),
        ),
        false,
        "is not allowed to modify nodes \"n3\"",
    )
    .unwrap();
    let pod = |annotations: Value, node_name: &str| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "static", "namespace": "demo", "annotations": annotations},
            "spec": {"nodeName": node_name, "containers": [{"name": "c", "image": "busybox"}]},
        })
    };
    expect(
        apply(api, &node, &pod(json!({}), "n1")),
        false,
        "can only create mirror pods",
    )
    .unwrap();
    expect(
        apply(
            api,
            &node,
            &pod(json!({"kubernetes.io/config.mirror": "x"}), "n2"),
        ),
        false,
        "spec.nodeName set to itself",
    )
    .unwrap();
    expect(
        kubectl(api, &node, &["create", "token", "default", "-n", "demo"]),
        false,
        "requested token not bound to a pod",
    )
    .unwrap();
    expect(
        kubectl(
            api,
            &node,
            &[
                "create",
                "token",
                "default",
                "-n",
                "demo",
                "--bound-object-kind=Pod",
                "--bound-object-name=p2",
            ],
        ),
        false,
        "forbidden",
    )
    .unwrap();
    let pod_token = ok(kubectl(
        api,
        &node,
        &[
            "create",
            "token",
            "default",
            "-n",
            "demo",
            "--bound-object-kind=Pod",
            "--bound-object-name=p1",
        ],
    ));
    let (code, body) = raw(api.port, &ca, &whoami_request(&pod_token))
        .await
        .unwrap();
    assert_eq!(code, 201, "{body}");
    let review: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        review["status"]["userInfo"]["extra"]["authentication.kubernetes.io/pod-name"],
        json!(["p1"])
    );
    assert_eq!(
        review["status"]["userInfo"]["extra"]["authentication.kubernetes.io/node-name"],
        json!(["n1"])
    );
    ok(kubectl(
        api,
        admin,
        &[
            "delete",
            "pod",
            "p1",
            "-n",
            "demo",
            "--grace-period=0",
            "--force",
        ],
    ));
    let start = Instant::now();
    while raw(api.port, &ca, &whoami_request(&pod_token))
        .await
        .unwrap()
        .0
        != 401
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "token of a deleted pod still accepted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The audit log: one JSON line per stage of each request, at the policy's level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log() {
    let c = Cluster::start();
    let (api, pki, admin) = (&c.api, &c.pki, &c.admin);
    let ca = api.ca_file();
    // Requests worth auditing: a refusal, an impersonation, an unauthenticated request.
    let alice = kubeconfig(api, pki, "alice", "    token: alice-token");
    expect(
        kubectl(api, &alice, &["get", "pods", "-n", "default"]),
        false,
        "forbidden",
    )
    .unwrap();
    kubectl(api, admin, &["--as=alice", "get", "pods", "-n", "demo"]);
    assert_eq!(
        raw(api.port, &ca, &get("/api/v1/namespaces", ""))
            .await
            .unwrap()
            .0,
        401
    );

    // Configmaps are audited with their bodies.
    ok(kubectl(
        api,
        admin,
        &[
            "create",
            "configmap",
            "audited",
            "-n",
            "demo",
            "--from-literal=a=b",
        ],
    ));
    let log = std::fs::read_to_string(pki.path("audit.log")).unwrap();
    let event: Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| {
            e["verb"] == "create"
                && e["objectRef"]["resource"] == "configmaps"
                && e["stage"] == "ResponseComplete"
                && e["user"]["username"] == "kubernetes-admin"
        })
        .expect("an audit event for the configmap");
    assert_eq!(event["level"], "RequestResponse");
    assert_eq!(event["requestObject"]["data"]["a"], "b");
    assert_eq!(event["responseObject"]["metadata"]["name"], "audited");

    // A watch is audited when it starts and again when it ends.
    let mut watch = tls_connect(api.port, &ca).await.unwrap();
    watch
        .write_all(get("/api/v1/namespaces?watch=true", &bearer("admin-token")).as_bytes())
        .await
        .unwrap();
    let mut first = [0u8; 12];
    watch.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    drop(watch);
    let watch_stages = || -> Vec<String> {
        std::fs::read_to_string(pki.path("audit.log"))
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["verb"] == "watch" && e["user"]["username"] == "admin")
            .map(|e| e["stage"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    eventually("the watch's audit events", || {
        let stages = watch_stages();
        if stages == ["RequestReceived", "ResponseStarted", "ResponseComplete"] {
            Ok(())
        } else {
            Err(format!("{stages:?}"))
        }
    });

    // One audit event per stage of every request, at Metadata level.
    let log = std::fs::read_to_string(pki.path("audit.log")).unwrap();
    let events: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let created_ns = events
        .iter()
        .find(|e| {
            e["verb"] == "create"
                && e["objectRef"]["resource"] == "namespaces"
                && e["stage"] == "ResponseComplete"
        })
        .expect("an audit event for the namespace creation");
    assert_eq!(created_ns["level"], "Metadata");
    assert_eq!(created_ns["user"]["username"], "kubernetes-admin");
    assert_eq!(created_ns["responseStatus"]["code"], 201);
    assert!(created_ns.get("requestObject").is_none());
    let id = created_ns["auditID"].as_str().unwrap();
    assert!(events
        .iter()
        .any(|e| e["auditID"] == id && e["stage"] == "RequestReceived"));
    let denied = events
        .iter()
        .find(|e| e["user"]["username"] == "alice" && e["responseStatus"]["code"] == 403)
        .expect("an audit event for a refused request");
    assert_eq!(
        denied["annotations"]["authorization.k8s.io/decision"],
        "forbid"
    );
    assert!(events
        .iter()
        .any(|e| e["impersonatedUser"]["username"] == "alice"));
    assert!(events
        .iter()
        .any(|e| e["responseStatus"]["code"] == 401 && e["requestURI"] == "/api/v1/namespaces"));
}

/// At start-up the bootstrap policy gets back what was taken from it, unless its
/// administrators turned `autoupdate` off.
#[test]
fn bootstrap_policy_is_reconciled_on_restart() {
    let mut c = Cluster::start();
    let rules = |c: &Cluster, role: &str| -> usize {
        let out = ok(kubectl(
            &c.api,
            &c.admin,
            &["get", "clusterrole", role, "-o", "json"],
        ));
        let v: Value = serde_json::from_str(&out).unwrap();
        v["rules"].as_array().map_or(0, Vec::len)
    };
    let (basic, discovery) = (
        rules(&c, "system:basic-user"),
        rules(&c, "system:discovery"),
    );
    for role in ["system:basic-user", "system:discovery"] {
        ok(kubectl(
            &c.api,
            &c.admin,
            &[
                "patch",
                "clusterrole",
                role,
                "--type=json",
                "-p",
                r#"[{"op":"replace","path":"/rules","value":[]}]"#,
            ],
        ));
    }
    ok(kubectl(
        &c.api,
        &c.admin,
        &[
            "annotate",
            "--overwrite",
            "clusterrole",
            "system:discovery",
            "rbac.authorization.kubernetes.io/autoupdate=false",
        ],
    ));
    ok(kubectl(
        &c.api,
        &c.admin,
        &["delete", "clusterrolebinding", "system:basic-user"],
    ));
    {
        let _one_at_a_time = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        c.api.restart().unwrap();
    }
    eventually("the apiserver is back", || {
        expect(
            kubectl(
                &c.api,
                &c.admin,
                &["get", "clusterrolebinding", "system:basic-user"],
            ),
            true,
            "",
        )
    });
    assert_eq!(rules(&c, "system:basic-user"), basic);
    assert_eq!(rules(&c, "system:discovery"), 0);
    assert!(discovery > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inflight_limits_answer_429() {
    let (_etcd, api) = {
        let _one_at_a_time = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        let etcd = Etcd::start().unwrap();
        let api = ApiServer::start_with(
            &etcd,
            &[
                "--max-requests-inflight=1",
                "--max-mutating-requests-inflight=1",
            ],
        )
        .unwrap();
        (etcd, api)
    };
    let ca = api.ca_file();
    // A watch holds no permit: reads still go through while it is open.
    let mut watch = tls_connect(api.port, &ca).await.unwrap();
    watch
        .write_all(get("/api/v1/namespaces?watch=true", "").as_bytes())
        .await
        .unwrap();
    let mut first = [0u8; 12];
    watch.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let (code, _) = raw(api.port, &ca, &get("/api/v1/namespaces", ""))
        .await
        .unwrap();
    assert_eq!(code, 200);

    // A create whose body has not fully arrived holds the only mutating permit.
    let mut slow = tls_connect(api.port, &ca).await.unwrap();
    slow.write_all(b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        .await
        .unwrap();
    slow.flush().await.unwrap();
    let body = r#"{"metadata":{"name":"c2"}}"#;
    let post = format!("POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    // Wait until the server has read the slow request's headers and counts its permit.
    let start = Instant::now();
    let held = r#"apiserver_current_inflight_requests{request_kind="mutating"} 1"#;
    loop {
        let (_, metrics) = raw(api.port, &ca, &get("/metrics", "")).await.unwrap();
        if metrics.contains(held) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the slow create never held the mutating permit:\n{}",
            api.process.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, text) = raw(api.port, &ca, &post).await.unwrap();
    assert_eq!(code, 429, "{text}");
    let status: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(status["reason"], "TooManyRequests");
    // Reads have their own pool.
    assert_eq!(
        raw(api.port, &ca, &get("/api/v1/namespaces", ""))
            .await
            .unwrap()
            .0,
        200
    );
    drop(slow);
    let start = Instant::now();
    loop {
        let (code, text) = raw(api.port, &ca, &post).await.unwrap();
        if code == 201 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{code} {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(watch);
}
