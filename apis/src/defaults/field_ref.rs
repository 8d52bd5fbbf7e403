//! Defaults of `ObjectFieldSelector`, the downward-API reference used by env vars and volumes.

use super::fields::{default_string, object_mut, Object};

/// A `fieldRef` without `apiVersion` refers to the core `v1` Pod fields.
pub(crate) fn apply(selector: &mut Object) {
    default_string(selector, "apiVersion", "v1");
}

/// Defaults the `fieldRef` of a holder (an env var source or a downward-API item), if it has one.
pub(crate) fn apply_in(holder: &mut Object) {
    if let Some(selector) = object_mut(holder, "fieldRef") {
        apply(selector);
    }
}
