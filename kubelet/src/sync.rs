//! Syncing one pod with the runtime, upstream's `SyncPod`: make the sandbox exist, set up
//! volumes, run init containers in order, then keep the containers running as the restart
//! policy says (with CrashLoopBackOff), and report the resulting status. Also the other end of
//! a pod's life: graceful termination and removal.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use cri_proto::v1::{
    ContainerState as CriState, ContainerStatus as CriContainer, PodSandboxConfig,
};
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::{
    api::{DeleteParams, Patch, PatchParams, Preconditions},
    Api,
};

use component_base::event_recorder::{EventRecorder, EventType};
use k8s_openapi::api::core::v1::ObjectReference;

use crate::{
    backoff::Backoff,
    container::{self, ContainerInputs},
    cri::{CriError, Runtime},
    dns::ClusterDns,
    envvars::{self, PodFacts},
    options::KubeletConfiguration,
    pod_status::{self, WorkerView},
    probes::Probes,
    runtime_pod::{attempt, is_exited, is_running, RuntimePod},
    sandbox::{self, SandboxContext},
    token::TokenManager,
    volumes,
};

/// What every pod worker shares: the node's identity, clients and configuration.
pub struct NodeContext {
    pub client: Option<kube::Client>,
    pub runtime: Runtime,
    pub runtime_name: String,
    pub config: Arc<KubeletConfiguration>,
    pub node_name: String,
    pub node_ip: String,
    pub root_dir: PathBuf,
    /// Allocatable cpu (millicores) and memory (bytes).
    pub allocatable: (i64, i64),
    pub memory_capacity: i64,
    pub tokens: TokenManager,
    /// Events about pods (`reportingController: kubelet`); none in standalone mode.
    pub recorder: Option<Arc<EventRecorder>>,
}

/// Why a sync round failed; the worker retries.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Runtime(#[from] CriError),
    #[error("apiserver: {0}")]
    Api(#[from] kube::Error),
    #[error("preparing pod directories: {0}")]
    Io(#[from] std::io::Error),
}

/// What the worker should do after a sync.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Sync again after this long at the latest.
    ResyncAfter(Duration),
    /// The pod is gone for good; the worker can stop.
    Finished,
}

const DEFAULT_RESYNC: Duration = Duration::from_secs(10);

/// The per-pod state one worker keeps between syncs.
pub struct PodSync {
    ctx: Arc<NodeContext>,
    backoff: Backoff,
    /// Image pull back-off per container (ErrImagePull, then ImagePullBackOff), on the same
    /// 10 s doubling to 5 min schedule as upstream's.
    pull_backoff: Backoff,
    view: WorkerView,
    probes: Probes,
    last_reported: Option<serde_json::Value>,
}

fn key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

/// Whether a container that exited with `exit_code` restarts under `policy`.
fn should_restart(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

fn ran_for(c: &CriContainer) -> Duration {
    Duration::from_nanos((c.finished_at - c.started_at).max(0) as u64)
}

impl PodSync {
    pub fn new(ctx: Arc<NodeContext>) -> PodSync {
        let view = WorkerView {
            host_ip: ctx.node_ip.clone(),
            runtime_name: ctx.runtime_name.clone(),
            ..Default::default()
        };
        let probes = Probes::new(ctx.runtime.clone());
        PodSync {
            ctx,
            backoff: Backoff::default(),
            pull_backoff: Backoff::default(),
            view,
            probes,
            last_reported: None,
        }
    }

    /// Brings the runtime in line with `pod` and reports its status.
    pub async fn sync(&mut self, pod: &Pod) -> Result<Next, SyncError> {
        if pod.metadata.deletion_timestamp.is_some() {
            let grace = pod
                .metadata
                .deletion_grace_period_seconds
                .or_else(|| {
                    pod.spec
                        .as_ref()
                        .and_then(|s| s.termination_grace_period_seconds)
                })
                .unwrap_or(30);
            self.terminate(pod, grace).await?;
            self.delete_from_api(pod).await?;
            return Ok(Next::Finished);
        }
        let runtime = RuntimePod::load(&self.ctx.runtime, &uid(pod)).await?;
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("Pending");
        if phase == "Succeeded" || phase == "Failed" {
            // Finished pods keep their exited containers (for logs) but give back the sandbox.
            self.stop_sandboxes(&runtime).await?;
            self.view.sandbox_ready = false;
            self.view.pod_ips.clear();
            self.report(pod, &runtime).await?;
            return Ok(Next::ResyncAfter(self.ctx.config.sync_frequency));
        }
        let mut next = DEFAULT_RESYNC;
        let runtime = match self.ensure_sandbox(pod, runtime).await? {
            Some(r) => r,
            None => {
                self.report(pod, &RuntimePod::load(&self.ctx.runtime, &uid(pod)).await?)
                    .await?;
                return Ok(Next::ResyncAfter(Duration::from_secs(2)));
            }
        };
        let sandbox_id = runtime
            .ready_sandbox()
            .map(|s| s.id.clone())
            .unwrap_or_default();
        let sandbox_attempt = runtime
            .sandbox()
            .and_then(|s| s.metadata.as_ref())
            .map(|m| m.attempt)
            .unwrap_or(0);
        let sandbox_config = sandbox::config(&self.sandbox_context(), pod, sandbox_attempt);
        let volumes = match self.prepare_files(pod).await {
            Ok(v) => v,
            Err(message) => {
                for c in pod.spec.iter().flat_map(|s| {
                    s.containers
                        .iter()
                        .chain(s.init_containers.iter().flatten())
                }) {
                    if runtime.latest(&c.name).is_none_or(|l| !is_running(l)) {
                        self.view.waiting.insert(
                            c.name.clone(),
                            ("CreateContainerConfigError".into(), message.clone()),
                        );
                    }
                }
                self.report(pod, &runtime).await?;
                return Ok(Next::ResyncAfter(Duration::from_secs(2)));
            }
        };
        let starter = Starter {
            sandbox_id: &sandbox_id,
            sandbox_config: &sandbox_config,
            volumes: &volumes,
        };
        let spec = pod.spec.clone().unwrap_or_default();
        let policy = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into());
        let mut initialized = true;
        for c in spec.init_containers.iter().flatten() {
            let sidecar = c.restart_policy.as_deref() == Some("Always");
            let init_policy = if sidecar {
                "Always"
            } else if policy == "Never" {
                "Never"
            } else {
                "OnFailure"
            };
            match runtime.latest(&c.name) {
                Some(l) if is_exited(l) && l.exit_code == 0 && !sidecar => continue,
                Some(l) if is_running(l) && sidecar => continue,
                Some(l) if is_running(l) => {
                    initialized = false;
                    break;
                }
                latest => {
                    initialized = false;
                    if let Some(wait) = self
                        .start_or_back_off(pod, c, latest, init_policy, &starter)
                        .await
                    {
                        next = next.min(wait);
                    }
                    break;
                }
            }
        }
        if initialized {
            for c in &spec.containers {
                let latest = runtime.latest(&c.name);
                if let Some(l) = latest.filter(|l| is_running(l)) {
                    let pod_ip = self.view.pod_ips.first().cloned().unwrap_or_default();
                    if self.probes.liveness_failed(&pod_ip, c, l).await {
                        tracing::info!(pod = %key(pod), container = %c.name, "liveness probe failed, restarting container");
                        self.event(
                            pod,
                            Some(&c.name),
                            EventType::Warning,
                            "Unhealthy",
                            "Probe",
                            "Liveness probe failed".into(),
                        );
                        let note = format!(
                            "Container {} failed liveness probe, will be restarted",
                            c.name
                        );
                        self.event(
                            pod,
                            Some(&c.name),
                            EventType::Normal,
                            "Killing",
                            "Kill",
                            note,
                        );
                        let grace = spec.termination_grace_period_seconds.unwrap_or(30);
                        self.ctx.runtime.stop_container(&l.id, grace).await?;
                        next = Duration::ZERO;
                    }
                    continue;
                }
                if let Some(wait) = self
                    .start_or_back_off(pod, c, latest, &policy, &starter)
                    .await
                {
                    next = next.min(wait);
                }
            }
        }
        let runtime = RuntimePod::load(&self.ctx.runtime, &uid(pod)).await?;
        self.remove_old_instances(&runtime).await;
        let all: Vec<&Container> = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .collect();
        let probe_next = self.probes.update(&all, &runtime, &mut self.view).await;
        next = next.min(probe_next);
        self.report(pod, &runtime).await?;
        Ok(Next::ResyncAfter(next.max(Duration::from_millis(200))))
    }

    /// Records an event about the pod (and one of its containers) without holding up the sync.
    fn event(
        &self,
        pod: &Pod,
        container: Option<&str>,
        kind: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let Some(recorder) = self.ctx.recorder.clone() else {
            return;
        };
        let regarding = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: pod.metadata.name.clone(),
            namespace: pod.metadata.namespace.clone(),
            uid: pod.metadata.uid.clone(),
            field_path: container.map(|c| format!("spec.containers{{{c}}}")),
            ..Default::default()
        };
        let (reason, action) = (reason.to_string(), action.to_string());
        tokio::spawn(async move {
            recorder
                .record(&regarding, kind, &reason, &action, &note)
                .await
        });
    }

    fn sandbox_context(&self) -> SandboxContext<'_> {
        SandboxContext {
            node_name: &self.ctx.node_name,
            pod_logs_dir: &self.ctx.config.pod_logs_dir,
            cgroup_root: &self.ctx.config.cgroup_root,
            dns: ClusterDns {
                servers: &self.ctx.config.cluster_dns,
                domain: &self.ctx.config.cluster_domain,
                host_resolv_conf: &self.ctx.config.resolv_conf,
            },
        }
    }

    /// Makes sure the pod has a ready sandbox, replacing a dead one; `None` when it could not.
    async fn ensure_sandbox(
        &mut self,
        pod: &Pod,
        runtime: RuntimePod,
    ) -> Result<Option<RuntimePod>, SyncError> {
        if runtime.ready_sandbox().is_some() {
            self.read_sandbox_network(pod, &runtime).await;
            return Ok(Some(runtime));
        }
        let policy = pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref())
            .unwrap_or("Always");
        if runtime.sandbox().is_some() {
            // The sandbox died: its containers go with it, and all start again in a new one.
            tracing::info!(pod = %key(pod), "sandbox is not ready; recreating it");
            for c in runtime.running() {
                self.ctx.runtime.stop_container(&c.id, 0).await?;
            }
            self.stop_sandboxes(&runtime).await?;
            if policy == "Never" && !runtime.containers.is_empty() {
                return Ok(Some(runtime));
            }
        }
        let attempt = runtime
            .sandbox()
            .and_then(|s| s.metadata.as_ref())
            .map(|m| m.attempt + 1)
            .unwrap_or(0);
        let config = sandbox::config(&self.sandbox_context(), pod, attempt);
        std::fs::create_dir_all(&config.log_directory)?;
        std::fs::create_dir_all(volumes::pod_dir(&self.ctx.root_dir, &uid(pod)))?;
        match self.ctx.runtime.run_pod_sandbox(config).await {
            Ok(id) => tracing::info!(pod = %key(pod), sandbox = %id, "started pod sandbox"),
            Err(err) => {
                tracing::warn!(pod = %key(pod), %err, "creating pod sandbox");
                self.event(
                    pod,
                    None,
                    EventType::Warning,
                    "FailedCreatePodSandBox",
                    "CreatePodSandbox",
                    format!("Failed to create pod sandbox: {err}"),
                );
                self.view.sandbox_ready = false;
                return Ok(None);
            }
        }
        let runtime = RuntimePod::load(&self.ctx.runtime, &uid(pod)).await?;
        self.read_sandbox_network(pod, &runtime).await;
        Ok(Some(runtime))
    }

    async fn read_sandbox_network(&mut self, pod: &Pod, runtime: &RuntimePod) {
        self.view.sandbox_ready = runtime.ready_sandbox().is_some();
        if sandbox::host_network(pod) {
            self.view.pod_ips = vec![self.ctx.node_ip.clone()];
            return;
        }
        let Some(s) = runtime.ready_sandbox() else {
            return;
        };
        if let Ok(status) = self.ctx.runtime.pod_sandbox_status(&s.id).await {
            if let Some(net) = status.network {
                let mut ips: Vec<String> = vec![net.ip]
                    .into_iter()
                    .filter(|ip| !ip.is_empty())
                    .collect();
                ips.extend(net.additional_ips.into_iter().map(|p| p.ip));
                self.view.pod_ips = ips;
            }
        }
    }

    fn facts<'a>(&'a self, pod: &'a Pod) -> PodFacts<'a> {
        PodFacts {
            pod,
            pod_ips: &self.view.pod_ips,
            host_ip: &self.ctx.node_ip,
            node_allocatable: self.ctx.allocatable,
        }
    }

    /// Volumes and the hosts file; the error is the message containers wait with.
    async fn prepare_files(&self, pod: &Pod) -> Result<HashMap<String, PathBuf>, String> {
        let facts = self.facts(pod);
        let volumes = volumes::setup(
            &self.ctx.root_dir,
            self.ctx.client.as_ref(),
            &self.ctx.tokens,
            &facts,
        )
        .await
        .map_err(|e| e.to_string())?;
        if !sandbox::host_network(pod) {
            let text = sandbox::hosts_file(
                pod,
                &self.view.pod_ips,
                &self.ctx.node_name,
                &self.ctx.config.cluster_domain,
            );
            let path = volumes::pod_dir(&self.ctx.root_dir, &uid(pod)).join("etc-hosts");
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                std::fs::write(&path, text).map_err(|e| format!("writing /etc/hosts: {e}"))?;
            }
        }
        Ok(volumes)
    }

    /// Starts container `c` (first start or restart by `policy`), or records why it waits.
    /// Returns when the worker should look again if it is backing off.
    async fn start_or_back_off(
        &mut self,
        pod: &Pod,
        c: &Container,
        latest: Option<&CriContainer>,
        policy: &str,
        starter: &Starter<'_>,
    ) -> Option<Duration> {
        let next_attempt = match latest {
            None => 0,
            Some(l) if l.state == CriState::ContainerCreated as i32 => {
                // Created but never started (a failed start): replace it.
                if let Err(err) = self.ctx.runtime.remove_container(&l.id).await {
                    tracing::warn!(pod = %key(pod), container = %c.name, %err, "removing unstarted container");
                }
                attempt(l)
            }
            Some(l) if is_exited(l) => {
                if !should_restart(policy, l.exit_code) {
                    self.view.waiting.remove(&c.name);
                    return None;
                }
                if let Some(wait) = self.backoff.remaining(&c.name, ran_for(l), Instant::now()) {
                    let message = format!(
                        "back-off {}s restarting failed container={} pod={}_{}({})",
                        self.backoff.delay(&c.name).as_secs(),
                        c.name,
                        pod.metadata.name.as_deref().unwrap_or_default(),
                        pod.metadata.namespace.as_deref().unwrap_or_default(),
                        uid(pod)
                    );
                    let note = format!(
                        "Back-off restarting failed container {} in pod {}_{}({})",
                        c.name,
                        pod.metadata.name.as_deref().unwrap_or_default(),
                        pod.metadata.namespace.as_deref().unwrap_or_default(),
                        uid(pod)
                    );
                    self.event(
                        pod,
                        Some(&c.name),
                        EventType::Warning,
                        "BackOff",
                        "Restart",
                        note,
                    );
                    self.view
                        .waiting
                        .insert(c.name.clone(), ("CrashLoopBackOff".into(), message));
                    return Some(wait);
                }
                self.backoff.restarted(&c.name, Instant::now());
                attempt(l) + 1
            }
            Some(_) => return None,
        };
        match self.start_container(pod, c, next_attempt, starter).await {
            Ok(()) => {
                self.view.waiting.remove(&c.name);
                None
            }
            Err((reason, message)) => {
                tracing::warn!(pod = %key(pod), container = %c.name, %reason, %message, "starting container");
                self.event(
                    pod,
                    Some(&c.name),
                    EventType::Warning,
                    "Failed",
                    "Start",
                    format!("Error: {message}"),
                );
                let retry = self
                    .pull_backoff
                    .remaining(&c.name, Duration::ZERO, Instant::now())
                    .unwrap_or(Duration::from_secs(2));
                self.view.waiting.insert(c.name.clone(), (reason, message));
                Some(retry)
            }
        }
    }

    /// Pulls (if allowed and needed), creates and starts one container instance.
    async fn start_container(
        &mut self,
        pod: &Pod,
        c: &Container,
        attempt: u32,
        starter: &Starter<'_>,
    ) -> Result<(), (String, String)> {
        let image = c.image.clone().unwrap_or_default();
        let image_ref = match self.ctx.runtime.image_status(&image).await {
            Ok(Some(found)) => {
                let note = format!("Container image \"{image}\" already present on machine");
                self.event(
                    pod,
                    Some(&c.name),
                    EventType::Normal,
                    "Pulled",
                    "Pull",
                    note,
                );
                found.id
            }
            Ok(None) if c.image_pull_policy.as_deref() == Some("Never") => {
                return Err((
                    "ErrImageNeverPull".into(),
                    format!("Container image \"{image}\" is not present with pull policy of Never"),
                ));
            }
            Ok(None) => {
                let now = Instant::now();
                if self
                    .pull_backoff
                    .remaining(&c.name, Duration::ZERO, now)
                    .is_some()
                {
                    let message = format!("Back-off pulling image \"{image}\"");
                    self.event(
                        pod,
                        Some(&c.name),
                        EventType::Normal,
                        "BackOff",
                        "Pull",
                        message.clone(),
                    );
                    return Err(("ImagePullBackOff".into(), message));
                }
                self.event(
                    pod,
                    Some(&c.name),
                    EventType::Normal,
                    "Pulling",
                    "Pull",
                    format!("Pulling image \"{image}\""),
                );
                match self.ctx.runtime.pull_image(&image).await {
                    Ok(reference) => {
                        self.pull_backoff.reset(&c.name);
                        self.event(
                            pod,
                            Some(&c.name),
                            EventType::Normal,
                            "Pulled",
                            "Pull",
                            format!("Successfully pulled image \"{image}\""),
                        );
                        reference
                    }
                    Err(e) => {
                        self.pull_backoff.restarted(&c.name, now);
                        return Err((
                            "ErrImagePull".to_string(),
                            format!("Failed to pull image \"{image}\": {e}"),
                        ));
                    }
                }
            }
            Err(e) => return Err(("ErrImageInspect".into(), e.to_string())),
        };
        let facts = self.facts(pod);
        let env = envvars::container_env(self.ctx.client.as_ref(), &facts, c)
            .await
            .map_err(|e| ("CreateContainerConfigError".to_string(), e.to_string()))?;
        let pod_dir = volumes::pod_dir(&self.ctx.root_dir, &uid(pod));
        let termination_log = container::termination_log_path(&pod_dir, &c.name, attempt);
        let prepare = || -> std::io::Result<()> {
            if let Some(parent) = termination_log.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&termination_log, b"")?;
            std::fs::create_dir_all(
                std::path::Path::new(&starter.sandbox_config.log_directory).join(&c.name),
            )
        };
        prepare().map_err(|e| ("CreateContainerConfigError".to_string(), e.to_string()))?;
        let hosts = pod_dir.join("etc-hosts");
        let inputs = ContainerInputs {
            pod,
            container: c,
            attempt,
            env,
            volumes: starter.volumes,
            hosts_file: (!sandbox::host_network(pod)).then_some(hosts.as_path()),
            termination_log: &termination_log,
            image_ref,
            node_memory_bytes: self.ctx.memory_capacity,
        };
        let config = container::config(&inputs);
        let id = self
            .ctx
            .runtime
            .create_container(starter.sandbox_id, config, starter.sandbox_config.clone())
            .await
            .map_err(|e| ("CreateContainerError".to_string(), e.to_string()))?;
        self.event(
            pod,
            Some(&c.name),
            EventType::Normal,
            "Created",
            "Create",
            format!("Created container: {}", c.name),
        );
        self.ctx
            .runtime
            .start_container(&id)
            .await
            .map_err(|e| ("RunContainerError".to_string(), e.to_string()))?;
        tracing::info!(pod = %key(pod), container = %c.name, attempt, id = %id, "started container");
        self.event(
            pod,
            Some(&c.name),
            EventType::Normal,
            "Started",
            "Start",
            format!("Started container {}", c.name),
        );
        self.probes.container_started(&c.name);
        if let Some(hook) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
            let pod_ip = self.view.pod_ips.first().cloned().unwrap_or_default();
            if let Ok(status) = self.ctx.runtime.container_status(&id).await {
                if let Err(why) = self.probes.run_handler(pod, &pod_ip, &status, hook).await {
                    tracing::warn!(pod = %key(pod), container = %c.name, %why, "FailedPostStartHook");
                    let grace = crate::container::grace_period(pod);
                    let _ = self.ctx.runtime.stop_container(&id, grace).await;
                    return Err(("PostStartHookError".into(), why));
                }
            }
        }
        self.view.waiting.remove(&c.name);
        Ok(())
    }

    /// Keeps the newest two instances of each container (the current one and the previous one
    /// for `lastState` and `--previous` logs).
    async fn remove_old_instances(&self, runtime: &RuntimePod) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for c in &runtime.containers {
            let name = c
                .metadata
                .as_ref()
                .map(|m| m.name.as_str())
                .unwrap_or_default();
            let n = seen.entry(name).or_default();
            *n += 1;
            if *n > 2 && is_exited(c) {
                if let Err(err) = self.ctx.runtime.remove_container(&c.id).await {
                    tracing::debug!(container = %c.id, %err, "removing old container instance");
                }
            }
        }
    }

    async fn stop_sandboxes(&self, runtime: &RuntimePod) -> Result<(), SyncError> {
        for s in runtime
            .sandboxes
            .iter()
            .filter(|s| s.state == cri_proto::v1::PodSandboxState::SandboxReady as i32)
        {
            self.ctx.runtime.stop_pod_sandbox(&s.id).await?;
        }
        Ok(())
    }

    /// Stops the pod's containers within `grace` seconds, then removes everything it had on the
    /// node: containers, sandboxes, volumes and logs.
    pub async fn terminate(&mut self, pod: &Pod, grace: i64) -> Result<(), SyncError> {
        let uid = uid(pod);
        let runtime = RuntimePod::load(&self.ctx.runtime, &uid).await?;
        let running: Vec<&CriContainer> = runtime.running().collect();
        if !running.is_empty() {
            tracing::info!(pod = %key(pod), grace, "killing pod containers");
        }
        let stops = running.iter().map(|c| {
            let spec = pod.spec.as_ref().and_then(|s| {
                let name = c
                    .metadata
                    .as_ref()
                    .map(|m| m.name.as_str())
                    .unwrap_or_default();
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
                    .find(|sc| sc.name == name)
            });
            self.stop_with_hooks(pod, spec, c, grace)
        });
        for result in futures::future::join_all(stops).await {
            result?;
        }
        self.stop_sandboxes(&runtime).await?;
        for c in &runtime.containers {
            if let Err(err) = self.ctx.runtime.remove_container(&c.id).await {
                tracing::debug!(container = %c.id, %err, "removing container");
            }
        }
        for s in &runtime.sandboxes {
            self.ctx.runtime.remove_pod_sandbox(&s.id).await?;
        }
        sandbox::remove_pod_cgroup(&self.ctx.config.cgroup_root, pod);
        volumes::teardown(&self.ctx.root_dir, &uid)?;
        self.ctx.tokens.forget(&uid);
        let logs = sandbox::log_directory(&self.ctx.config.pod_logs_dir, pod);
        if let Err(err) = std::fs::remove_dir_all(&logs) {
            if err.kind() != std::io::ErrorKind::NotFound {
                tracing::debug!(path = %logs.display(), %err, "removing pod logs");
            }
        }
        Ok(())
    }

    /// Runs the preStop hook (within the grace period), then stops the container.
    async fn stop_with_hooks(
        &self,
        pod: &Pod,
        spec: Option<&Container>,
        c: &CriContainer,
        grace: i64,
    ) -> Result<(), SyncError> {
        let started = Instant::now();
        if let Some(name) = c.metadata.as_ref().map(|m| m.name.as_str()) {
            self.event(
                pod,
                Some(name),
                EventType::Normal,
                "Killing",
                "Kill",
                format!("Stopping container {name}"),
            );
        }
        if let Some(hook) = spec
            .and_then(|s| s.lifecycle.as_ref())
            .and_then(|l| l.pre_stop.as_ref())
        {
            let pod_ip = self.view.pod_ips.first().cloned().unwrap_or_default();
            let run = self.probes.run_handler(pod, &pod_ip, c, hook);
            if tokio::time::timeout(Duration::from_secs(grace.max(0) as u64), run)
                .await
                .is_err()
            {
                tracing::info!(pod = %key(pod), container = %c.id, "preStop hook did not finish within the grace period");
            }
        }
        let remaining = (grace - started.elapsed().as_secs() as i64).max(2.min(grace));
        match self.ctx.runtime.stop_container(&c.id, remaining).await {
            Err(e) if !e.is_not_found() => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Deletes the API object once everything on the node is gone (grace period 0).
    async fn delete_from_api(&self, pod: &Pod) -> Result<(), SyncError> {
        let Some(client) = &self.ctx.client else {
            return Ok(());
        };
        if crate::static_pods::is_static(pod) {
            return Ok(());
        }
        let api: Api<Pod> = Api::namespaced(
            client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api
            .delete(pod.metadata.name.as_deref().unwrap_or_default(), &params)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the pod's status through `pods/status` when it changed.
    async fn report(&mut self, pod: &Pod, runtime: &RuntimePod) -> Result<(), SyncError> {
        let status = pod_status::compute(pod, runtime, &self.view);
        let value = serde_json::to_value(&status).unwrap_or_default();
        // Someone else (the node lifecycle controller marking pods not ready) may have changed
        // the status since; the kubelet's view wins.
        if self.last_reported.as_ref() == Some(&value)
            && !pod_status::differs(pod.status.as_ref(), &status)
        {
            return Ok(());
        }
        let Some(client) = self.ctx.client.clone() else {
            self.last_reported = Some(value);
            return Ok(());
        };
        let (namespace, name) = match crate::static_pods::mirror_target(pod) {
            Some(target) => target,
            None => (
                pod.metadata.namespace.clone().unwrap_or_default(),
                pod.metadata.name.clone().unwrap_or_default(),
            ),
        };
        let api: Api<Pod> = Api::namespaced(client, &namespace);
        let patch = serde_json::json!({ "status": value });
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                self.last_reported = Some(value);
                Ok(())
            }
            // A static pod's mirror may not exist yet; the mirror pod manager creates it.
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The sandbox a pod's containers start in.
struct Starter<'a> {
    sandbox_id: &'a str,
    sandbox_config: &'a PodSandboxConfig,
    volumes: &'a HashMap<String, PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        assert!(should_restart("Always", 0));
        assert!(should_restart("OnFailure", 1));
        assert!(!should_restart("OnFailure", 0));
        assert!(!should_restart("Never", 1));
    }
}
