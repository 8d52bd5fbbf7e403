//! The CRI client: `RuntimeService` and `ImageService` over gRPC on the runtime's unix socket.
//!
//! Every call is bounded by a timeout (upstream's 2-minute runtime request timeout) so that a hung
//! runtime shows up as an error in the pod worker rather than a stuck worker.

use std::{collections::HashMap, path::PathBuf, time::Duration};

use cri_proto::v1::{
    image_service_client::ImageServiceClient, runtime_service_client::RuntimeServiceClient, *,
};
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

/// Labels every object the kubelet creates in the runtime carries; objects without them are not
/// the kubelet's and are never touched.
pub const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";
pub const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
pub const CONTAINER_NAME_LABEL: &str = "io.kubernetes.container.name";

const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a CRI call failed.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    #[error("unsupported container runtime endpoint {0:?}: want unix:///path")]
    Endpoint(String),
    #[error("{op}: {status}")]
    Call {
        op: &'static str,
        status: tonic::Status,
    },
}

impl CriError {
    /// Whether the runtime reported that the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, CriError::Call { status, .. } if status.code() == tonic::Code::NotFound)
    }
}

/// A connection to a CRI runtime. Cheap to clone; connects lazily so that the kubelet starts
/// (and keeps trying) while the runtime is not up yet.
#[derive(Clone)]
pub struct Runtime {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

/// Awaits one CRI call, logging how long the runtime took (the phases of pod start-up).
async fn timed<T>(
    op: &'static str,
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<tonic::Response<T>, CriError> {
    let started = std::time::Instant::now();
    let result = call.await;
    tracing::debug!(
        op,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "CRI call"
    );
    result.map_err(|status| CriError::Call { op, status })
}

fn request<T>(msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.set_timeout(REQUEST_TIMEOUT);
    req
}

impl Runtime {
    /// A client for `endpoint` (`unix:///run/containerd/containerd.sock`).
    pub fn connect(endpoint: &str) -> Result<Runtime, CriError> {
        let path = endpoint
            .strip_prefix("unix://")
            .filter(|p| p.starts_with('/'))
            .map(PathBuf::from)
            .ok_or_else(|| CriError::Endpoint(endpoint.to_string()))?;
        // The URI is required by tonic but unused: the connector dials the socket.
        let channel = Endpoint::from_static("http://cri.local")
            .connect_timeout(Duration::from_secs(5))
            .connect_with_connector_lazy(tower::service_fn(move |_| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }));
        Ok(Runtime {
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        })
    }

    pub async fn version(&self) -> Result<VersionResponse, CriError> {
        let req = request(VersionRequest {
            version: "v1".into(),
        });
        Ok(timed("Version", self.runtime.clone().version(req))
            .await?
            .into_inner())
    }

    pub async fn status(&self) -> Result<StatusResponse, CriError> {
        let req = request(StatusRequest { verbose: false });
        Ok(timed("Status", self.runtime.clone().status(req))
            .await?
            .into_inner())
    }

    pub async fn run_pod_sandbox(&self, config: PodSandboxConfig) -> Result<String, CriError> {
        let req = request(RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        });
        let resp = timed("RunPodSandbox", self.runtime.clone().run_pod_sandbox(req)).await?;
        Ok(resp.into_inner().pod_sandbox_id)
    }

    pub async fn stop_pod_sandbox(&self, id: &str) -> Result<(), CriError> {
        let req = request(StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        });
        timed("StopPodSandbox", self.runtime.clone().stop_pod_sandbox(req)).await?;
        Ok(())
    }

    pub async fn remove_pod_sandbox(&self, id: &str) -> Result<(), CriError> {
        let req = request(RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        });
        timed(
            "RemovePodSandbox",
            self.runtime.clone().remove_pod_sandbox(req),
        )
        .await?;
        Ok(())
    }

    pub async fn pod_sandbox_status(&self, id: &str) -> Result<PodSandboxStatus, CriError> {
        let req = request(PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: false,
        });
        let resp = timed(
            "PodSandboxStatus",
            self.runtime.clone().pod_sandbox_status(req),
        )
        .await?;
        resp.into_inner().status.ok_or_else(|| CriError::Call {
            op: "PodSandboxStatus",
            status: tonic::Status::not_found(format!("sandbox {id} has no status")),
        })
    }

    /// Sandboxes carrying all of `labels`.
    pub async fn list_pod_sandboxes(
        &self,
        labels: HashMap<String, String>,
    ) -> Result<Vec<PodSandbox>, CriError> {
        let filter = PodSandboxFilter {
            label_selector: labels,
            ..Default::default()
        };
        let req = request(ListPodSandboxRequest {
            filter: Some(filter),
        });
        let resp = timed("ListPodSandbox", self.runtime.clone().list_pod_sandbox(req)).await?;
        Ok(resp.into_inner().items)
    }

    pub async fn create_container(
        &self,
        sandbox_id: &str,
        config: ContainerConfig,
        sandbox_config: PodSandboxConfig,
    ) -> Result<String, CriError> {
        let req = request(CreateContainerRequest {
            pod_sandbox_id: sandbox_id.into(),
            config: Some(config),
            sandbox_config: Some(sandbox_config),
        });
        let resp = timed(
            "CreateContainer",
            self.runtime.clone().create_container(req),
        )
        .await?;
        Ok(resp.into_inner().container_id)
    }

    pub async fn start_container(&self, id: &str) -> Result<(), CriError> {
        let req = request(StartContainerRequest {
            container_id: id.into(),
        });
        timed("StartContainer", self.runtime.clone().start_container(req)).await?;
        Ok(())
    }

    /// Stops a container, killing it after `timeout_secs`.
    pub async fn stop_container(&self, id: &str, timeout_secs: i64) -> Result<(), CriError> {
        let mut req = request(StopContainerRequest {
            container_id: id.into(),
            timeout: timeout_secs,
        });
        req.set_timeout(REQUEST_TIMEOUT + Duration::from_secs(timeout_secs.max(0) as u64));
        timed("StopContainer", self.runtime.clone().stop_container(req)).await?;
        Ok(())
    }

    pub async fn remove_container(&self, id: &str) -> Result<(), CriError> {
        let req = request(RemoveContainerRequest {
            container_id: id.into(),
        });
        timed(
            "RemoveContainer",
            self.runtime.clone().remove_container(req),
        )
        .await?;
        Ok(())
    }

    /// Containers carrying all of `labels`.
    pub async fn list_containers(
        &self,
        labels: HashMap<String, String>,
    ) -> Result<Vec<Container>, CriError> {
        let filter = ContainerFilter {
            label_selector: labels,
            ..Default::default()
        };
        let req = request(ListContainersRequest {
            filter: Some(filter),
        });
        let resp = timed("ListContainers", self.runtime.clone().list_containers(req)).await?;
        Ok(resp.into_inner().containers)
    }

    pub async fn container_status(&self, id: &str) -> Result<ContainerStatus, CriError> {
        let req = request(ContainerStatusRequest {
            container_id: id.into(),
            verbose: false,
        });
        let resp = timed(
            "ContainerStatus",
            self.runtime.clone().container_status(req),
        )
        .await?;
        resp.into_inner().status.ok_or_else(|| CriError::Call {
            op: "ContainerStatus",
            status: tonic::Status::not_found(format!("container {id} has no status")),
        })
    }

    /// Runs `cmd` in a container and waits for it, up to `timeout_secs` (0: no limit).
    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout_secs: i64,
    ) -> Result<ExecSyncResponse, CriError> {
        let mut req = request(ExecSyncRequest {
            container_id: id.into(),
            cmd,
            timeout: timeout_secs,
        });
        if timeout_secs > 0 {
            req.set_timeout(Duration::from_secs(timeout_secs as u64 + 5));
        }
        Ok(timed("ExecSync", self.runtime.clone().exec_sync(req))
            .await?
            .into_inner())
    }

    /// The URL of the runtime's streaming server for an exec session.
    pub async fn exec(&self, req: ExecRequest) -> Result<String, CriError> {
        Ok(timed("Exec", self.runtime.clone().exec(request(req)))
            .await?
            .into_inner()
            .url)
    }

    /// The URL of the runtime's streaming server for an attach session.
    pub async fn attach(&self, req: AttachRequest) -> Result<String, CriError> {
        Ok(timed("Attach", self.runtime.clone().attach(request(req)))
            .await?
            .into_inner()
            .url)
    }

    /// The URL of the runtime's streaming server for a port-forward session.
    pub async fn port_forward(&self, req: PortForwardRequest) -> Result<String, CriError> {
        let resp = timed(
            "PortForward",
            self.runtime.clone().port_forward(request(req)),
        )
        .await?;
        Ok(resp.into_inner().url)
    }

    /// Asks the runtime to reopen a container's log file (after rotation).
    pub async fn reopen_container_log(&self, id: &str) -> Result<(), CriError> {
        let req = request(ReopenContainerLogRequest {
            container_id: id.into(),
        });
        timed(
            "ReopenContainerLog",
            self.runtime.clone().reopen_container_log(req),
        )
        .await?;
        Ok(())
    }

    pub async fn list_container_stats(&self) -> Result<Vec<ContainerStats>, CriError> {
        let req = request(ListContainerStatsRequest {
            filter: Some(ContainerStatsFilter::default()),
        });
        let resp = timed(
            "ListContainerStats",
            self.runtime.clone().list_container_stats(req),
        )
        .await?;
        Ok(resp.into_inner().stats)
    }

    /// The image, or `None` when the runtime does not hold it.
    pub async fn image_status(&self, image: &str) -> Result<Option<Image>, CriError> {
        let spec = ImageSpec {
            image: image.into(),
            ..Default::default()
        };
        let req = request(ImageStatusRequest {
            image: Some(spec),
            verbose: false,
        });
        let resp = timed("ImageStatus", self.images.clone().image_status(req)).await?;
        Ok(resp.into_inner().image)
    }

    /// Pulls an image; returns the runtime's reference to it.
    pub async fn pull_image(&self, image: &str) -> Result<String, CriError> {
        let spec = ImageSpec {
            image: image.into(),
            ..Default::default()
        };
        let req = request(PullImageRequest {
            image: Some(spec),
            ..Default::default()
        });
        let resp = timed("PullImage", self.images.clone().pull_image(req)).await?;
        Ok(resp.into_inner().image_ref)
    }

    pub async fn list_images(&self) -> Result<Vec<Image>, CriError> {
        let req = request(ListImagesRequest { filter: None });
        Ok(timed("ListImages", self.images.clone().list_images(req))
            .await?
            .into_inner()
            .images)
    }
}
