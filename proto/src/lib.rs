//! The Container Runtime Interface (CRI) v1: the `runtime.v1` messages and the tonic clients and
//! servers of `RuntimeService` and `ImageService`, wire-compatible with containerd 1.6+ and CRI-O.
//!
//! The servers are generated too so that tests can stand up an in-process fake runtime.

/// Package `runtime.v1`.
pub mod runtime {
    pub mod v1 {
        #![allow(clippy::all, missing_docs)]
        tonic::include_proto!("runtime.v1");
    }
}

pub use runtime::v1;
