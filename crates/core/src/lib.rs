//! `eso-core`: the reconciliation core of eso-rs.
//!
//! The path is the same for the operator, `sync-once` and embedding tools:
//! [`fetch`] (I/O: resolve stores, reuse provider clients, read and post-process data) →
//! [`plan`] (pure: the desired Secret, the `Ready` condition and events) → apply (server-side
//! apply of the Secret and its status, in the operator). [`render`] runs fetch and plan offline
//! over manifests, for `sync-once render`. [`hash`] reproduces upstream's hashes byte for byte.

pub mod apply;
pub mod ces_controller;
pub mod controller;
pub mod fetch;
pub mod hash;
pub mod kube_io;
pub mod manifests;
pub mod object_metrics;
pub mod oneshot;
pub mod plan;
pub mod render;
pub mod schedule;
pub mod selector;
pub mod status;
pub mod store;
pub mod store_controller;
pub mod sync_window;
pub mod template;
pub mod testing;
