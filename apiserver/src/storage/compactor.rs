//! Periodic etcd compaction, as upstream's `--etcd-compaction-interval`: every interval, compact
//! to the revision seen one interval earlier, coordinated between apiserver replicas through a
//! versioned key so that only one of them compacts per interval.

use std::time::Duration;

use super::etcd::Etcd;

/// Runs forever; does nothing when `interval` is zero.
pub async fn run(etcd: Etcd, key: String, interval: Duration) {
    if interval.is_zero() {
        return;
    }
    let mut last_rev = 0i64;
    loop {
        tokio::time::sleep(interval).await;
        let (_, version) = match etcd.get_with_version(&key).await {
            Ok(v) => v,
            Err(err) => {
                tracing::warn!(%err, "reading the compaction key");
                continue;
            }
        };
        let current = match etcd.current_revision().await {
            Ok(r) => r,
            Err(err) => {
                tracing::warn!(%err, "reading the current revision");
                continue;
            }
        };
        // Win the interval first, then compact what was current one interval ago.
        match etcd
            .swap_version(&key, version, current.to_string().into_bytes())
            .await
        {
            Ok(true) if last_rev > 0 => match etcd.compact(last_rev).await {
                Ok(()) => tracing::info!(revision = last_rev, "compacted etcd"),
                Err(err) => tracing::warn!(%err, revision = last_rev, "compacting etcd"),
            },
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, "updating the compaction key"),
        }
        last_rev = current;
    }
}
