//! Container probes (startup, liveness, readiness) and lifecycle hook handlers, with upstream's
//! defaults: period 10 s, timeout 1 s, success threshold 1, failure threshold 3. Probes run from
//! the pod worker's sync loop, which wakes up when the next probe is due.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use cri_proto::v1::ContainerStatus as CriContainer;
use k8s_openapi::{
    api::core::v1::{
        Container, ExecAction, HTTPGetAction, LifecycleHandler, Pod, Probe, TCPSocketAction,
    },
    apimachinery::pkg::util::intstr::IntOrString,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    pod_status::WorkerView,
    runtime_pod::{is_running, RuntimePod},
};

#[derive(Debug, Default)]
struct ProbeState {
    last_run: Option<Instant>,
    successes: i32,
    failures: i32,
}

#[derive(Debug)]
struct ContainerProbes {
    container_id: String,
    started_at: Instant,
    startup_done: bool,
    ready: bool,
    startup: ProbeState,
    liveness: ProbeState,
    readiness: ProbeState,
}

/// Probe state of one pod's containers.
pub struct Probes {
    runtime: crate::cri::Runtime,
    containers: HashMap<String, ContainerProbes>,
}

/// The outcome of one probe run.
#[derive(Debug, PartialEq)]
enum Outcome {
    Success,
    Failure(String),
}

fn period(p: &Probe) -> Duration {
    Duration::from_secs(p.period_seconds.unwrap_or(10).max(1) as u64)
}

fn timeout(p: &Probe) -> Duration {
    Duration::from_secs(p.timeout_seconds.unwrap_or(1).max(1) as u64)
}

/// Whether the probe is due, and when it will be otherwise.
fn due(p: &Probe, state: &ProbeState, started_at: Instant, now: Instant) -> Result<(), Duration> {
    let first =
        started_at + Duration::from_secs(p.initial_delay_seconds.unwrap_or(0).max(0) as u64);
    let at = match state.last_run {
        Some(last) => (last + period(p)).max(first),
        None => first,
    };
    if at <= now {
        Ok(())
    } else {
        Err(at - now)
    }
}

/// Applies a result to the thresholds; returns the probe's settled verdict if it changed.
fn record(p: &Probe, state: &mut ProbeState, outcome: &Outcome, now: Instant) -> Option<bool> {
    state.last_run = Some(now);
    match outcome {
        Outcome::Success => {
            state.failures = 0;
            state.successes += 1;
            (state.successes >= p.success_threshold.unwrap_or(1).max(1)).then_some(true)
        }
        Outcome::Failure(_) => {
            state.successes = 0;
            state.failures += 1;
            (state.failures >= p.failure_threshold.unwrap_or(3).max(1)).then_some(false)
        }
    }
}

impl ContainerProbes {
    fn new(c: &CriContainer) -> ContainerProbes {
        ContainerProbes {
            container_id: c.id.clone(),
            started_at: Instant::now(),
            startup_done: false,
            ready: false,
            startup: ProbeState::default(),
            liveness: ProbeState::default(),
            readiness: ProbeState::default(),
        }
    }
}

impl Probes {
    pub fn new(runtime: crate::cri::Runtime) -> Probes {
        Probes {
            runtime,
            containers: HashMap::new(),
        }
    }

    /// Forgets the probe state of a container that was (re)started.
    pub fn container_started(&mut self, name: &str) {
        self.containers.remove(name);
    }

    /// The probe state of the running instance `c` of container `name`.
    fn entry(&mut self, name: &str, c: &CriContainer) -> &mut ContainerProbes {
        let e = self
            .containers
            .entry(name.to_string())
            .or_insert_with(|| ContainerProbes::new(c));
        if e.container_id != c.id {
            *e = ContainerProbes::new(c);
        }
        e
    }

    /// Runs due startup and readiness probes and fills readiness into `view`; returns when the
    /// next probe is due.
    pub async fn update(
        &mut self,
        specs: &[&Container],
        runtime: &RuntimePod,
        view: &mut WorkerView,
    ) -> Duration {
        let mut next = Duration::from_secs(3600);
        let pod_ip = view.pod_ips.first().cloned().unwrap_or_default();
        let cri = self.runtime.clone();
        for spec in specs {
            let Some(c) = runtime.latest(&spec.name).filter(|c| is_running(c)) else {
                self.containers.remove(&spec.name);
                view.ready.remove(&spec.name);
                view.started.remove(&spec.name);
                continue;
            };
            let now = Instant::now();
            let e = self.entry(&spec.name, c);
            match &spec.startup_probe {
                Some(p) if !e.startup_done => match due(p, &e.startup, e.started_at, now) {
                    Ok(()) => {
                        let outcome = run(&cri, c, p, &pod_ip, spec).await;
                        if record(p, &mut e.startup, &outcome, now) == Some(true) {
                            e.startup_done = true;
                        }
                        next = next.min(period(p));
                    }
                    Err(wait) => next = next.min(wait),
                },
                Some(_) => {}
                None => e.startup_done = true,
            }
            view.started.insert(spec.name.clone(), e.startup_done);
            let ready = match &spec.readiness_probe {
                Some(p) if e.startup_done => {
                    match due(p, &e.readiness, e.started_at, now) {
                        Ok(()) => {
                            let outcome = run(&cri, c, p, &pod_ip, spec).await;
                            if let Some(verdict) = record(p, &mut e.readiness, &outcome, now) {
                                e.ready = verdict;
                            }
                            next = next.min(period(p));
                        }
                        Err(wait) => next = next.min(wait),
                    }
                    e.ready
                }
                Some(_) => false,
                None => e.startup_done,
            };
            view.ready.insert(spec.name.clone(), ready);
            if let Some(p) = &spec.liveness_probe {
                next = next.min(
                    due(p, &e.liveness, e.started_at, now)
                        .err()
                        .unwrap_or(Duration::ZERO),
                );
            }
        }
        next
    }

    /// Runs the liveness probe of a running container if due; true once it failed
    /// `failureThreshold` times in a row (the container must be restarted).
    pub async fn liveness_failed(
        &mut self,
        pod_ip: &str,
        spec: &Container,
        c: &CriContainer,
    ) -> bool {
        let Some(p) = &spec.liveness_probe else {
            return false;
        };
        let now = Instant::now();
        let cri = self.runtime.clone();
        let e = self.entry(&spec.name, c);
        if !e.startup_done && spec.startup_probe.is_some() {
            return false;
        }
        if due(p, &e.liveness, e.started_at, now).is_err() {
            return false;
        }
        let outcome = run(&cri, c, p, pod_ip, spec).await;
        if let Outcome::Failure(why) = &outcome {
            tracing::debug!(container = %spec.name, %why, "liveness probe failed");
        }
        let failed = record(p, &mut e.liveness, &outcome, now) == Some(false);
        if failed {
            self.containers.remove(&spec.name);
        }
        failed
    }

    /// Runs a lifecycle hook (postStart/preStop) against a container; errors are its message.
    pub async fn run_handler(
        &self,
        pod: &Pod,
        pod_ip: &str,
        c: &CriContainer,
        handler: &LifecycleHandler,
    ) -> Result<(), String> {
        let spec_name = c
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let spec = pod
            .spec
            .as_ref()
            .and_then(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
                    .find(|x| x.name == spec_name)
            })
            .cloned()
            .unwrap_or_default();
        let outcome = if let Some(exec) = &handler.exec {
            exec_action(&self.runtime, c, exec, None).await
        } else if let Some(http) = &handler.http_get {
            http_get(http, pod_ip, &spec, Duration::from_secs(30)).await
        } else if let Some(tcp) = &handler.tcp_socket {
            tcp_socket(tcp, pod_ip, &spec, Duration::from_secs(30)).await
        } else if let Some(sleep) = &handler.sleep {
            tokio::time::sleep(Duration::from_secs(sleep.seconds.max(0) as u64)).await;
            Outcome::Success
        } else {
            Outcome::Success
        };
        match outcome {
            Outcome::Success => Ok(()),
            Outcome::Failure(why) => Err(why),
        }
    }
}

/// Runs one probe of a running container.
async fn run(
    runtime: &crate::cri::Runtime,
    c: &CriContainer,
    p: &Probe,
    pod_ip: &str,
    spec: &Container,
) -> Outcome {
    let limit = timeout(p);
    if let Some(exec) = &p.exec {
        exec_action(runtime, c, exec, Some(limit)).await
    } else if let Some(http) = &p.http_get {
        http_get(http, pod_ip, spec, limit).await
    } else if let Some(tcp) = &p.tcp_socket {
        tcp_socket(tcp, pod_ip, spec, limit).await
    } else if let Some(grpc) = &p.grpc {
        grpc_health(
            pod_ip,
            grpc.port,
            grpc.service.as_deref().unwrap_or(""),
            limit,
        )
        .await
    } else {
        Outcome::Success
    }
}

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

/// `grpc.health.v1.HealthCheckResponse`; status 1 is SERVING.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

/// The standard gRPC health check (`grpc.health.v1.Health/Check`) over plain text, as
/// upstream's gRPC probe: success only when the service answers SERVING.
async fn grpc_health(pod_ip: &str, port: i32, service: &str, limit: Duration) -> Outcome {
    let target = format!("http://{pod_ip}:{port}");
    let check = async {
        let endpoint = tonic::transport::Endpoint::from_shared(target.clone())
            .map_err(|e| e.to_string())?
            .connect_timeout(limit)
            .timeout(limit);
        let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.map_err(|e| e.to_string())?;
        let path =
            tonic::codegen::http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Check");
        let codec = tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
        let request = tonic::Request::new(HealthCheckRequest {
            service: service.to_string(),
        });
        let response = grpc
            .unary(request, path, codec)
            .await
            .map_err(|e| e.message().to_string())?;
        Ok::<i32, String>(response.into_inner().status)
    };
    match tokio::time::timeout(limit, check).await {
        Ok(Ok(1)) => Outcome::Success,
        Ok(Ok(status)) => Outcome::Failure(format!(
            "service unhealthy (responded with status {status})"
        )),
        Ok(Err(e)) => Outcome::Failure(format!("failed to connect service {target}: {e}")),
        Err(_) => Outcome::Failure(format!(
            "timeout: health rpc did not complete within {limit:?}"
        )),
    }
}

/// A command through CRI ExecSync; exit code 0 is success.
async fn exec_action(
    runtime: &crate::cri::Runtime,
    c: &CriContainer,
    exec: &ExecAction,
    limit: Option<Duration>,
) -> Outcome {
    let cmd = exec.command.clone().unwrap_or_default();
    let secs = limit.map(|l| l.as_secs() as i64).unwrap_or(0);
    match runtime.exec_sync(&c.id, cmd, secs).await {
        Ok(r) if r.exit_code == 0 => Outcome::Success,
        Ok(r) => Outcome::Failure(format!(
            "command exited with {}: {}",
            r.exit_code,
            String::from_utf8_lossy(&r.stdout)
        )),
        Err(e) => Outcome::Failure(e.to_string()),
    }
}

/// A port number, resolving a named port from the container's ports.
fn resolve_port(port: &IntOrString, spec: &Container) -> Option<u16> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => spec
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .or_else(|| name.parse().ok()),
    }
}

async fn tcp_socket(
    tcp: &TCPSocketAction,
    pod_ip: &str,
    spec: &Container,
    limit: Duration,
) -> Outcome {
    let host = tcp
        .host
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| pod_ip.to_string());
    let Some(port) = resolve_port(&tcp.port, spec) else {
        return Outcome::Failure("invalid port".into());
    };
    match tokio::time::timeout(limit, tokio::net::TcpStream::connect((host.as_str(), port))).await {
        Ok(Ok(_)) => Outcome::Success,
        Ok(Err(e)) => Outcome::Failure(format!("dial tcp {host}:{port}: {e}")),
        Err(_) => Outcome::Failure(format!("dial tcp {host}:{port}: timeout")),
    }
}

/// An HTTP/1.1 GET; 200–399 is success, as upstream.
async fn http_get(
    http: &HTTPGetAction,
    pod_ip: &str,
    spec: &Container,
    limit: Duration,
) -> Outcome {
    let host = http
        .host
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| pod_ip.to_string());
    let Some(port) = resolve_port(&http.port, spec) else {
        return Outcome::Failure("invalid port".into());
    };
    if http.scheme.as_deref() == Some("HTTPS") {
        return tcp_socket(
            &TCPSocketAction {
                host: Some(host),
                port: IntOrString::Int(i32::from(port)),
            },
            pod_ip,
            spec,
            limit,
        )
        .await;
    }
    let path = http
        .path
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/".into());
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n");
    for h in http.http_headers.iter().flatten() {
        request.push_str(&format!("{}: {}\r\n", h.name, h.value));
    }
    request.push_str("\r\n");
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut buf = vec![0u8; 1024];
        let mut read = 0;
        while read < buf.len() {
            let n = stream.read(&mut buf[read..]).await?;
            if n == 0 || buf[..read + n].contains(&b'\n') {
                read += n;
                break;
            }
            read += n;
        }
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf[..read]).into_owned())
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(Ok(response)) => {
            let code: u16 = response
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            if (200..400).contains(&code) {
                Outcome::Success
            } else {
                Outcome::Failure(format!("HTTP probe failed with statuscode: {code}"))
            }
        }
        Ok(Err(e)) => Outcome::Failure(format!("Get \"http://{host}:{port}{path}\": {e}")),
        Err(_) => Outcome::Failure(format!("Get \"http://{host}:{port}{path}\": timeout")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        let p = Probe {
            failure_threshold: Some(2),
            ..Default::default()
        };
        let mut s = ProbeState::default();
        let now = Instant::now();
        assert_eq!(record(&p, &mut s, &Outcome::Failure("x".into()), now), None);
        assert_eq!(
            record(&p, &mut s, &Outcome::Failure("x".into()), now),
            Some(false)
        );
        assert_eq!(record(&p, &mut s, &Outcome::Success, now), Some(true));
        assert!(due(&p, &s, now, now).is_err());
        assert!(due(&p, &s, now, now + Duration::from_secs(10)).is_ok());
    }

    #[tokio::test]
    async fn http_and_tcp_probes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 512];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let ok = String::from_utf8_lossy(&buf[..n]).starts_with("GET /ok ");
                let reply = if ok {
                    "HTTP/1.1 200 OK\r\n\r\n"
                } else {
                    "HTTP/1.1 500 Oops\r\n\r\n"
                };
                let _ = s.write_all(reply.as_bytes()).await;
            }
        });
        let spec = Container::default();
        let get = |path: &str| HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(i32::from(port)),
            ..Default::default()
        };
        assert_eq!(
            http_get(&get("/ok"), "127.0.0.1", &spec, Duration::from_secs(2)).await,
            Outcome::Success
        );
        assert!(matches!(
            http_get(&get("/bad"), "127.0.0.1", &spec, Duration::from_secs(2)).await,
            Outcome::Failure(_)
        ));
        let tcp = TCPSocketAction {
            host: None,
            port: IntOrString::Int(i32::from(port)),
        };
        assert_eq!(
            tcp_socket(&tcp, "127.0.0.1", &spec, Duration::from_secs(2)).await,
            Outcome::Success
        );
    }

    /// A gRPC health service answering `status` to every check.
    #[derive(Clone)]
    struct Health(i32);

    impl tonic::server::NamedService for Health {
        const NAME: &'static str = "grpc.health.v1.Health";
    }

    impl tower::Service<tonic::codegen::http::Request<tonic::body::Body>> for Health {
        type Response = tonic::codegen::http::Response<tonic::body::Body>;
        type Error = std::convert::Infallible;
        type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Self::Error>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: tonic::codegen::http::Request<tonic::body::Body>) -> Self::Future {
            struct Check(i32);
            impl tonic::server::UnaryService<HealthCheckRequest> for Check {
                type Response = HealthCheckResponse;
                type Future =
                    std::future::Ready<Result<tonic::Response<HealthCheckResponse>, tonic::Status>>;
                fn call(&mut self, _: tonic::Request<HealthCheckRequest>) -> Self::Future {
                    std::future::ready(Ok(tonic::Response::new(HealthCheckResponse {
                        status: self.0,
                    })))
                }
            }
            let status = self.0;
            Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                Ok(grpc.unary(Check(status), req).await)
            })
        }
    }

    #[tokio::test]
    async fn grpc_health_probe() {
        for (status, serving) in [(1, true), (2, false)] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let incoming = tokio_stream_from(listener);
            tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(Health(status))
                    .serve_with_incoming(incoming),
            );
            let outcome =
                grpc_health("127.0.0.1", i32::from(port), "", Duration::from_secs(5)).await;
            assert_eq!(outcome == Outcome::Success, serving, "{outcome:?}");
        }
        let closed = grpc_health("127.0.0.1", 1, "", Duration::from_secs(2)).await;
        assert!(matches!(closed, Outcome::Failure(_)));
    }

    /// Accepted connections of `listener` as the stream tonic serves.
    fn tokio_stream_from(
        listener: tokio::net::TcpListener,
    ) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
        futures::stream::unfold(listener, |l| async move {
            Some((l.accept().await.map(|(s, _)| s), l))
        })
    }
}
