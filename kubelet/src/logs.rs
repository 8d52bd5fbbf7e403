//! Container log rotation, as upstream's container log manager: every 10 s, a running
//! container's log file larger than `containerLogMaxSize` is renamed to
//! `<n>.log.<timestamp>` and the runtime reopens a fresh file (CRI ReopenContainerLog); at most
//! `containerLogMaxFiles` files per container are kept.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::Duration,
};

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use tokio::sync::watch;

use crate::{
    cri::{Runtime, POD_UID_LABEL},
    quantity,
    runtime_pod::is_running,
};

const MONITOR_PERIOD: Duration = Duration::from_secs(10);

/// Rotated files of `log` (`<log>.<suffix>`), oldest first.
fn rotated(log: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (log.parent(), log.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let prefix = format!("{name}.");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| n.starts_with(&prefix) && !n.ends_with(".tmp"))
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Removes the oldest rotated files so that, with the live file, at most `max_files` remain.
fn prune(log: &Path, max_files: usize) {
    let old = rotated(log);
    let excess = (old.len() + 1).saturating_sub(max_files.max(1));
    for path in old.into_iter().take(excess) {
        if let Err(err) = std::fs::remove_file(&path) {
            tracing::debug!(path = %path.display(), %err, "removing rotated log");
        }
    }
}

/// One rotation pass over the runtime's containers.
pub async fn rotate_once(runtime: &Runtime, max_size: u64, max_files: usize) {
    let containers = match runtime.list_containers(HashMap::new()).await {
        Ok(c) => c,
        Err(err) => {
            tracing::debug!(%err, "listing containers for log rotation");
            return;
        }
    };
    for c in containers
        .iter()
        .filter(|c| c.labels.contains_key(POD_UID_LABEL))
    {
        let Ok(status) = runtime.container_status(&c.id).await else {
            continue;
        };
        if !is_running(&status) || status.log_path.is_empty() {
            continue;
        }
        let log = PathBuf::from(&status.log_path);
        prune(&log, max_files);
        let size = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        if size <= max_size {
            continue;
        }
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%d-%H%M%S%.f")
            .to_string();
        let target = log.with_file_name(format!(
            "{}.{stamp}",
            log.file_name().and_then(|n| n.to_str()).unwrap_or("0.log")
        ));
        if let Err(err) = std::fs::rename(&log, &target) {
            tracing::warn!(path = %log.display(), %err, "rotating container log");
            continue;
        }
        if let Err(err) = runtime.reopen_container_log(&c.id).await {
            // Keep the logs the container writes: put the file back.
            tracing::warn!(container = %c.id, %err, "reopening container log");
            let _ = std::fs::rename(&target, &log);
            continue;
        }
        prune(&log, max_files);
    }
}

/// Rotates until `shutdown` flips.
pub async fn run(
    runtime: Runtime,
    max_size: String,
    max_files: u32,
    mut shutdown: watch::Receiver<bool>,
) {
    let max_size = quantity::bytes(&Quantity(max_size))
        .filter(|b| *b > 0)
        .unwrap_or(10 << 20) as u64;
    let mut tick = tokio::time::interval(MONITOR_PERIOD);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        rotate_once(&runtime, max_size, max_files as usize).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prunes_oldest_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("0.log");
        std::fs::write(&log, "live").unwrap();
        for stamp in ["20260101-000001", "20260101-000002", "20260101-000003"] {
            std::fs::write(dir.path().join(format!("0.log.{stamp}")), "old").unwrap();
        }
        prune(&log, 3);
        let left: Vec<String> = rotated(&log)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, vec!["0.log.20260101-000002", "0.log.20260101-000003"]);
        assert!(log.exists());
    }
}
