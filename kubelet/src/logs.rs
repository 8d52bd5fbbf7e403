//! Container log rotation, as upstream's container log manager: every 10 s, a running
//! container's log file larger than `containerLogMaxSize` is renamed to
//! `<n>.log.<timestamp>` and the runtime reopens a fresh file (CRI ReopenContainerLog); the
//! rotated files before the newest are gzip-compressed to `<n>.log.<timestamp>.gz`; at most
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

/// Compresses a rotated log to `<path>.gz` (through `<path>.tmp`, so a crash never leaves a
/// truncated `.gz`) and removes the original.
fn compress(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let tmp = path.with_file_name(format!("{name}.tmp"));
    let mut input = std::fs::File::open(path)?;
    let output = std::fs::File::create(&tmp)?;
    let mut encoder = flate2::write::GzEncoder::new(output, flate2::Compression::default());
    std::io::copy(&mut input, &mut encoder)?;
    encoder.finish()?.flush()?;
    std::fs::rename(&tmp, path.with_file_name(format!("{name}.gz")))?;
    std::fs::remove_file(path)
}

/// Compresses every rotated file of `log` that is not yet compressed.
async fn compress_rotated(log: &Path) {
    for path in rotated(log)
        .into_iter()
        .filter(|p| p.extension().is_none_or(|e| e != "gz"))
    {
        let target = path.clone();
        match tokio::task::spawn_blocking(move || compress(&target)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(path = %path.display(), %err, "compressing rotated log")
            }
            Err(err) => tracing::warn!(path = %path.display(), %err, "compressing rotated log"),
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
        compress_rotated(&log).await;
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

    #[tokio::test]
    async fn compresses_rotated_logs() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("0.log");
        std::fs::write(&log, "live").unwrap();
        let old = dir.path().join("0.log.20260101-000001");
        std::fs::write(&old, "2026-01-01T00:00:00Z stdout F old line\n").unwrap();
        compress_rotated(&log).await;
        assert!(!old.exists());
        let gz = dir.path().join("0.log.20260101-000001.gz");
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "2026-01-01T00:00:00Z stdout F old line\n");
        assert_eq!(rotated(&log), vec![gz]);
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "live");
    }
}
