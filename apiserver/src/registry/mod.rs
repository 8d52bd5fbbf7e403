//! The generic registry: resource declarations, and one store that implements every verb for
//! every resource, consulting per-resource behaviour only where upstream's strategies differ.

pub mod bootstrap;
pub mod catalog;
pub mod event;
pub mod job;
pub mod meta;
pub mod namespace;
pub mod pod;
pub mod resource;
pub mod scale;
pub mod service;
pub mod store;

pub use resource::{Behaviour, ResourceDef, Subresource};
pub use store::Store;
