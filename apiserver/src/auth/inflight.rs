//! Max-in-flight limits (`--max-requests-inflight`, `--max-mutating-requests-inflight`): two
//! pools of permits, read-only and mutating; a request that finds its pool empty is answered
//! 429 with Retry-After at once. Long-running requests (watches, logs, exec, attach,
//! port-forward, proxy) and members of system:masters hold no permit.

use std::sync::Arc;

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

/// The two pools; `None` is unlimited.
pub struct Inflight {
    read_only: Option<Arc<Semaphore>>,
    mutating: Option<Arc<Semaphore>>,
}

impl Inflight {
    pub fn new(read_only: usize, mutating: usize) -> Inflight {
        let pool = |n: usize| (n > 0).then(|| Arc::new(Semaphore::new(n)));
        Inflight {
            read_only: pool(read_only),
            mutating: pool(mutating),
        }
    }

    /// A permit held for the request's duration, or the 429 to answer.
    pub fn acquire(&self, mutating: bool) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
        let pool = if mutating {
            &self.mutating
        } else {
            &self.read_only
        };
        match pool {
            None => Ok(None),
            Some(s) => s.clone().try_acquire_owned().map(Some).map_err(|_| {
                ApiError::too_many_requests("Too many requests, please try again later.")
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_are_separate_and_bounded() {
        let f = Inflight::new(1, 1);
        let held = f.acquire(false).unwrap();
        let e = f.acquire(false).unwrap_err();
        assert_eq!((e.code, e.retry_after), (429, Some(1)));
        assert!(f.acquire(true).unwrap().is_some());
        drop(held);
        assert!(f.acquire(false).is_ok());
        assert!(Inflight::new(0, 0).acquire(true).unwrap().is_none());
        assert!(is_long_running("watch", ""));
        assert!(is_long_running("get", "log"));
        assert!(!is_long_running("list", ""));
    }
}
