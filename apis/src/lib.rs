//! Per-type knowledge of the built-in API, as upstream keeps it in `pkg/apis/<group>` and
//! `pkg/printers`: defaulting, validation, and the columns `kubectl get` shows.
pub mod defaults;
pub mod printers;
pub mod quota;
pub mod validation;
