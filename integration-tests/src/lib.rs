//! Harness for the end-to-end suites: real etcd members on free ports, the real
//! kube-apiserver binary, a kubeconfig, a kube client, and the real kubectl. Every process is
//! started in its own temporary directory and killed by PID when dropped.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

/// A free TCP port on loopback (bound and released; the race is acceptable for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// The directory holding the workspace's built binaries (target/debug).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/debug/deps/<test> -> target/debug
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A workspace binary, which `make test` builds before running the suites.
/// `FERROKUBE_BIN_DIR` overrides where binaries are found (the benchmarks use release builds).
pub fn binary(name: &str) -> PathBuf {
    match std::env::var_os("FERROKUBE_BIN_DIR") {
        Some(dir) => PathBuf::from(dir).join(name),
        None => bin_dir().join(name),
    }
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{what} was not ready within {timeout:?}")
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A child process killed when dropped.
pub struct Process {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Process {
    pub fn spawn(mut cmd: Command, log: PathBuf) -> Result<Process> {
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {:?}", cmd.get_program()))?;
        Ok(Process {
            child: Some(child),
            log,
        })
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits up to five seconds, then kills.
    pub fn terminate(&mut self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                if let Some(c) = self.child.as_mut() {
                    if let Ok(Some(_)) = c.try_wait() {
                        self.child = None;
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.kill();
    }

    /// The PID of the running process.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A real etcd cluster of one or more members on loopback.
pub struct Etcd {
    pub members: Vec<Process>,
    pub client_urls: Vec<String>,
    dir: tempfile::TempDir,
    peer_ports: Vec<u16>,
    client_ports: Vec<u16>,
}

impl Etcd {
    /// Starts a single member.
    pub fn start() -> Result<Etcd> {
        Etcd::start_cluster(1)
    }

    /// Starts `n` members forming one cluster.
    pub fn start_cluster(n: usize) -> Result<Etcd> {
        let dir = tempfile::tempdir()?;
        let client_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let peer_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let mut etcd = Etcd {
            members: Vec::new(),
            client_urls: client_ports
                .iter()
                .map(|p| format!("http://127.0.0.1:{p}"))
                .collect(),
            dir,
            peer_ports,
            client_ports,
        };
        for i in 0..n {
            let p = etcd.spawn_member(i)?;
            etcd.members.push(p);
        }
        for port in etcd.client_ports.clone() {
            wait_until("etcd", Duration::from_secs(20), || port_open(port))?;
        }
        // A member answers once the cluster has a leader.
        let url = etcd.client_urls[0].clone();
        wait_until("etcd leader", Duration::from_secs(20), || {
            Command::new("etcdctl")
                .env("ETCDCTL_API", "3")
                .args(["--endpoints", &url, "endpoint", "health"])
                .output()
                .is_ok_and(|o| o.status.success())
        })?;
        Ok(etcd)
    }

    fn spawn_member(&self, i: usize) -> Result<Process> {
        let name = format!("m{i}");
        let cluster: Vec<String> = self
            .peer_ports
            .iter()
            .enumerate()
            .map(|(j, p)| format!("m{j}=http://127.0.0.1:{p}"))
            .collect();
        let mut cmd = Command::new("etcd");
        cmd.args([
            "--name",
            &name,
            "--data-dir",
            &self.dir.path().join(&name).display().to_string(),
            "--listen-client-urls",
            &self.client_urls[i],
            "--advertise-client-urls",
            &self.client_urls[i],
            "--listen-peer-urls",
            &format!("http://127.0.0.1:{}", self.peer_ports[i]),
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{}", self.peer_ports[i]),
            "--initial-cluster",
            &cluster.join(","),
            "--initial-cluster-state",
            "new",
            "--initial-cluster-token",
            &format!("ferrokube-test-{}", self.client_ports[0]),
        ]);
        Process::spawn(cmd, self.dir.path().join(format!("{name}.log")))
    }

    /// The `--etcd-servers` value.
    pub fn endpoints(&self) -> String {
        self.client_urls.join(",")
    }

    /// Runs etcdctl against the first live member.
    pub fn etcdctl(&self, args: &[&str]) -> Result<Output> {
        Ok(Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(self.endpoints())
            .args(args)
            .output()?)
    }
}

/// A running kube-apiserver with a kubeconfig for it.
pub struct ApiServer {
    pub process: Process,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    etcd_servers: String,
    extra_args: Vec<String>,
}

impl ApiServer {
    /// Starts kube-apiserver on a free port against `etcd`.
    pub fn start(etcd: &Etcd) -> Result<ApiServer> {
        ApiServer::start_with(etcd, &[])
    }

    /// Starts kube-apiserver with extra flags.
    pub fn start_with(etcd: &Etcd, extra: &[&str]) -> Result<ApiServer> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let kubeconfig = dir.path().join("kubeconfig");
        let extra_args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let process = spawn_apiserver(dir.path(), port, &etcd.endpoints(), &extra_args)?;
        let server = ApiServer {
            process,
            port,
            kubeconfig,
            dir,
            etcd_servers: etcd.endpoints(),
            extra_args,
        };
        server.wait_ready()?;
        server.write_kubeconfig()?;
        Ok(server)
    }

    fn wait_ready(&self) -> Result<()> {
        let port = self.port;
        wait_until("kube-apiserver", Duration::from_secs(30), || {
            port_open(port)
        })
        .with_context(|| self.process.log_text())
    }

    /// Stops (SIGTERM) and starts the apiserver again on the same port and etcd.
    pub fn restart(&mut self) -> Result<()> {
        self.process.terminate();
        self.process = spawn_apiserver(
            self.dir.path(),
            self.port,
            &self.etcd_servers,
            &self.extra_args,
        )?;
        self.wait_ready()
    }

    /// The apiserver's PID (for memory figures).
    pub fn process_id(&self) -> Option<u32> {
        self.process.id()
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The CA bundle clients trust: the self-signed certificate the apiserver made.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("certs").join("apiserver.crt")
    }

    fn write_kubeconfig(&self) -> Result<()> {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: admin\n  user:\n    token: admin-token\ncontexts:\n- name: test\n  context: {{cluster: test, user: admin}}\ncurrent-context: test\n",
            self.url(),
            self.ca_file().display()
        );
        std::fs::write(&self.kubeconfig, text)?;
        Ok(())
    }

    /// A kube client for this apiserver.
    pub async fn client(&self) -> Result<kube::Client> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)?;
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// Runs the real kubectl (the version dispatcher on PATH) against this apiserver.
    pub fn kubectl(&self, args: &[&str]) -> Result<Output> {
        self.kubectl_stdin(args, None)
    }

    /// Runs kubectl with `stdin` as its standard input.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Result<Output> {
        use std::io::Write;
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().context("running kubectl")?;
        if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
            input.write_all(text.as_bytes())?;
        }
        Ok(child.wait_with_output()?)
    }
}

fn spawn_apiserver(dir: &Path, port: u16, etcd: &str, extra: &[String]) -> Result<Process> {
    let mut cmd = Command::new(binary("kube-apiserver"));
    cmd.arg(format!("--etcd-servers={etcd}"))
        .arg(format!("--secure-port={port}"))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--cert-dir={}", dir.join("certs").display()))
        .arg("--shutdown-delay-duration=1s")
        .args(extra);
    let log = dir.join(format!(
        "apiserver-{}.log",
        Instant::now().elapsed().as_nanos()
    ));
    Process::spawn(cmd, log)
}

/// stdout and stderr of a command, for assertion messages.
pub fn output_text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
