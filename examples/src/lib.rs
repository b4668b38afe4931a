//! `eso-examples`: how to embed `eso-core` in another Rust tool.
//!
//! The examples are the product of this crate; this library is empty. Run one with
//! `cargo run -p eso-examples --example NAME`:
//!
//! - `render_yaml`: render the Secret an ExternalSecret produces, offline, from a YAML string.
//! - `custom_provider`: a provider written outside eso-rs (a `HashMap`) plugged into a render.
//! - `sync_cluster`: sync the ExternalSecrets of one namespace of the cluster `KUBECONFIG`
//!   names, once.
//!
//! `tests/examples.rs` runs all three and checks what they print (the third against the
//! in-process test API server). See `docs/embedding.md`.
