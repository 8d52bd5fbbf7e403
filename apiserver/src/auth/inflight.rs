//! Max-in-flight limits (`--max-requests-inflight`, `--max-mutating-requests-inflight`): two
//! pools of permits, read-only and mutating; a request that finds its pool empty is answered
//! 429 with Retry-After at once. Long-running requests (watches, logs, exec, attach,
//! port-forward, proxy) and members of system:masters hold no permit.

use std::sync::Arc;

use prometheus::{IntGauge, IntGaugeVec};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::errors::ApiError;

/// Subresources that stream for as long as the client wants.
const LONG_RUNNING_SUBRESOURCES: &[&str] = &["attach", "exec", "log", "portforward", "proxy"];

/// Whether a request is long-running, as upstream's default long-running check.
pub fn is_long_running(verb: &str, subresource: &str) -> bool {
    matches!(verb, "watch" | "proxy") || LONG_RUNNING_SUBRESOURCES.contains(&subresource)
}

/// Whether a verb (resource verbs or lower-cased HTTP methods) changes state.
pub fn is_mutating(verb: &str) -> bool {
    !matches!(verb, "get" | "list" | "watch" | "head" | "options")
}

/// One pool of permits and the gauge (`apiserver_current_inflight_requests`) counting those
/// held.
struct Pool {
    permits: Arc<Semaphore>,
    in_use: IntGauge,
}

/// The two pools; `None` is unlimited.
pub struct Inflight {
    read_only: Option<Pool>,
    mutating: Option<Pool>,
}

/// A request's permit: returned to its pool, and uncounted, when the request ends.
#[derive(Debug)]
pub struct Permit {
    _permit: OwnedSemaphorePermit,
    in_use: IntGauge,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.in_use.dec();
    }
}

impl Inflight {
    pub fn new(read_only: usize, mutating: usize, in_use: &IntGaugeVec) -> Inflight {
        let pool = |n: usize, kind: &str| {
            (n > 0).then(|| Pool {
                permits: Arc::new(Semaphore::new(n)),
                in_use: in_use.with_label_values(&[kind]),
            })
        };
        Inflight {
            read_only: pool(read_only, "readOnly"),
            mutating: pool(mutating, "mutating"),
        }
    }

    /// A permit held for the request's duration, or the 429 to answer.
    pub fn acquire(&self, mutating: bool) -> Result<Option<Permit>, ApiError> {
        let pool = if mutating {
            &self.mutating
        } else {
            &self.read_only
        };
        let Some(pool) = pool else {
            return Ok(None);
        };
        let permit = pool.permits.clone().try_acquire_owned().map_err(|_| {
            ApiError::too_many_requests("Too many requests, please try again later.")
        })?;
        pool.in_use.inc();
        Ok(Some(Permit {
            _permit: permit,
            in_use: pool.in_use.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_are_separate_and_bounded() {
        let gauge = IntGaugeVec::new(prometheus::Opts::new("g", "g"), &["request_kind"]).unwrap();
        let f = Inflight::new(1, 1, &gauge);
        let held = f.acquire(false).unwrap();
        assert_eq!(gauge.with_label_values(&["readOnly"]).get(), 1);
        let e = f.acquire(false).unwrap_err();
        assert_eq!((e.code, e.retry_after), (429, Some(1)));
        assert!(f.acquire(true).unwrap().is_some());
        drop(held);
        assert_eq!(gauge.with_label_values(&["readOnly"]).get(), 0);
        assert!(f.acquire(false).is_ok());
        assert!(Inflight::new(0, 0, &gauge).acquire(true).unwrap().is_none());
        assert!(is_long_running("watch", ""));
        assert!(is_long_running("get", "log"));
        assert!(!is_long_running("list", ""));
    }
}
