//! Type-independent API machinery shared by the apiserver and clients: the OpenAPI schemas of
//! the built-in types, patch application, strict field validation, protobuf request bodies,
//! resource quantities and label/field selectors.

pub mod fieldvalidation;
pub mod patch;
pub mod protobuf;
pub mod quantity;
pub mod schema;
pub mod selector;
