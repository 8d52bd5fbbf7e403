//! ferrokube's kube-controller-manager: the control loops that turn desired state into pods,
//! one binary, one process, each controller on the process's shared informers.

pub mod app;
pub mod clientbuilder;
pub mod controllers;
pub mod events;
pub mod expectations;
pub mod options;
pub mod pods;
pub mod selector;
